import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from './App.svelte';
import { conv, fakeBackend, me, msg } from './tests/fakeBackend';

describe('startup', () => {
  it('shows onboarding with the version for a new profile', async () => {
    const b = fakeBackend({
      profileStatus: async () => ({ state: 'new', keyringAvailable: true }),
    });
    render(App, { backend: b });
    expect(await screen.findByTestId('onboarding-username')).toBeInTheDocument();
    await waitFor(() =>
      expect(screen.getByTestId('app-version')).toHaveTextContent('Version 9.8.7'),
    );
    expect(screen.getByTestId('app-name')).toHaveTextContent('Sotto');
  });

  it('asks for the passphrase when locked', async () => {
    const b = fakeBackend({
      profileStatus: async () => ({ state: 'locked', keyStorage: 'passphrase' }),
    });
    render(App, { backend: b });
    const input = await screen.findByTestId('unlock-passphrase');
    await fireEvent.input(input, { target: { value: 'open sesame please now' } });
    await fireEvent.click(screen.getByTestId('unlock-submit'));
    expect(b.unlock).toHaveBeenCalledWith({ passphrase: 'open sesame please now' });
    expect(await screen.findByTestId('main-window')).toBeInTheDocument();
  });

  it('reports its first frame, then its first usable screen, once each', async () => {
    const b = fakeBackend({
      profileStatus: async () => ({ state: 'new', keyringAvailable: true }),
    });
    render(App, { backend: b });
    await screen.findByTestId('onboarding-username');
    await waitFor(() => expect(b.uiReady).toHaveBeenCalledTimes(2));
    expect(b.uiReady).toHaveBeenNthCalledWith(1, { stage: 'first-paint' });
    expect(b.uiReady).toHaveBeenNthCalledWith(2, { stage: 'first-screen' });
  });

  it('says so plainly when the profile cannot be read', async () => {
    const b = fakeBackend({
      profileStatus: () => Promise.reject({ code: 'internal', message: '' }),
    });
    render(App, { backend: b });
    expect(await screen.findByRole('alert')).toHaveTextContent('could not open your profile');
  });
});

describe('app lock', () => {
  async function openChat() {
    const b = fakeBackend({
      conversations: async () => [conv({ unread: 1 })],
      messages: async () => [msg(1, { text: 'the secret plan' }), msg(2)],
    });
    render(App, { backend: b });
    await fireEvent.click(await screen.findByTestId('conversation-bob'));
    expect(await screen.findByText('the secret plan')).toBeInTheDocument();
    return b;
  }

  it('drops every decrypted message when the Rust side reports locked', async () => {
    const b = await openChat();
    b.emit({ kind: 'locked' });
    expect(await screen.findByTestId('unlock-passphrase')).toBeInTheDocument();
    expect(screen.queryByText('the secret plan')).toBeNull();
    expect(screen.queryByTestId('main-window')).toBeNull();
    expect(document.body.textContent).not.toContain('bob');
  });

  it('locks with Ctrl+L in passphrase mode', async () => {
    const b = await openChat();
    await fireEvent.keyDown(window, { key: 'l', ctrlKey: true });
    await waitFor(() => expect(b.lock).toHaveBeenCalled());
    expect(await screen.findByTestId('unlock-passphrase')).toBeInTheDocument();
    expect(screen.queryByText('the secret plan')).toBeNull();
  });

  it('explains that keyring mode has no app lock', async () => {
    const b = fakeBackend({
      profileStatus: async () => ({ state: 'ready', me: { ...me, keyStorage: 'keyring' } }),
      privacyPage: () => new Promise(() => undefined),
    });
    render(App, { backend: b });
    await fireEvent.click(await screen.findByTestId('lock-unavailable'));
    expect(await screen.findByTestId('lock-note')).toHaveTextContent('passphrase key storage');
    expect(b.lock).not.toHaveBeenCalled();
  });
});
