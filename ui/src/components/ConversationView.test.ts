import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import App from '../App.svelte';
import type { ConversationSummary, PrivacyPage } from '../lib/backend';
import { Session } from '../lib/session.svelte';
import { strings } from '../lib/strings';
import { conv, fakeBackend, msg, page } from '../tests/fakeBackend';

function withBlockOnKeyChange(value: 'on' | 'off'): PrivacyPage {
  return {
    ...page,
    settings: [
      ...page.settings,
      {
        key: 'block-on-key-change',
        label: 'Stop sending when a contact’s safety number changes',
        protectsAgainst: 'Someone taking over a contact’s account.',
        values: 'on | off',
        value,
      },
    ],
  };
}

async function openChat(c: ConversationSummary, block: 'on' | 'off') {
  const b = fakeBackend({
    conversations: async () => [c],
    messages: async () => [msg(1, { text: 'earlier' })],
    privacyPage: vi.fn(async () => withBlockOnKeyChange(block)),
  });
  render(App, { backend: b });
  await waitFor(() => expect(b.privacyPage).toHaveBeenCalled());
  await fireEvent.click(await screen.findByTestId('conversation-bob'));
  expect(await screen.findByText('earlier')).toBeInTheDocument();
  return b;
}

const composer = () => screen.getByTestId('composer');

describe('sending to a contact whose safety number changed', () => {
  it('is paused up front when block-on-key-change is on', async () => {
    const b = await openChat(conv({ verification: 'changed' }), 'on');
    expect(screen.getByTestId('key-changed-banner')).toBeInTheDocument();
    await waitFor(() => expect(composer()).toBeDisabled());
    expect(screen.getByTestId('send-paused')).toHaveTextContent(strings.sendPaused);
    expect(b.sendText).not.toHaveBeenCalled();
  });

  it('is not paused when block-on-key-change is off', async () => {
    await openChat(conv({ verification: 'changed' }), 'off');
    expect(screen.getByTestId('key-changed-banner')).toBeInTheDocument();
    expect(composer()).toBeEnabled();
    expect(screen.queryByTestId('send-paused')).toBeNull();
  });

  it('is not paused for a contact whose key did not change', async () => {
    await openChat(conv({ verification: 'unverified' }), 'on');
    expect(composer()).toBeEnabled();
    expect(screen.queryByTestId('send-paused')).toBeNull();
  });

  it('pauses as soon as a key change is reported for the open chat', async () => {
    const b = await openChat(conv({ verification: 'verified' }), 'on');
    expect(composer()).toBeEnabled();
    b.emit({ kind: 'key-changed', contactId: conv().contactId });
    await waitFor(() => expect(composer()).toBeDisabled());
    expect(screen.getByTestId('send-paused')).toHaveTextContent(strings.sendPaused);
  });
});

describe('Session.isSendPaused', () => {
  it('follows the setting, or a refused send, and only while the key is changed', () => {
    const s = new Session(fakeBackend());
    const changed = conv({ verification: 'changed' });
    expect(s.isSendPaused(changed)).toBe(false);
    // Rust refused a send (the setting was not known yet): paused.
    s.sendPaused = { [changed.contactId]: true };
    expect(s.isSendPaused(changed)).toBe(true);
    // Turning the setting off lifts that too.
    s.applyPrivacy(withBlockOnKeyChange('off'));
    expect(s.isSendPaused(changed)).toBe(false);
    s.applyPrivacy(withBlockOnKeyChange('on'));
    expect(s.isSendPaused(changed)).toBe(true);
    expect(s.isSendPaused(conv({ verification: 'verified' }))).toBe(false);
    // A page without the setting changes nothing.
    s.applyPrivacy(page);
    expect(s.blockOnKeyChange).toBe(true);
  });
});
