import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { conv, fakeBackend, me, msg, page } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import MainWindow from './MainWindow.svelte';

const BOB = 'bb'.repeat(32);
const CAROL = 'cc'.repeat(32);

function mount(detail = 'name-and-text') {
  const backend = fakeBackend({
    conversations: vi.fn(async () => [
      conv(),
      conv({ contactId: CAROL, username: 'carol', displayName: 'Carol' }),
    ]),
    privacyPage: vi.fn(async () => ({
      ...page,
      settings: page.settings.map((s) =>
        s.key === 'notification-detail' ? { ...s, value: detail } : s,
      ),
    })),
  });
  render(Harness, { backend, component: MainWindow, args: { me, info: null, onLock: vi.fn() } });
  return backend;
}

const settle = () => new Promise((r) => setTimeout(r, 0));

const incoming = (contactId: string, id: number, text = 'the secret plan') => ({
  kind: 'message' as const,
  message: msg(id, { contactId, text, outgoing: false, state: 'received' as const }),
  request: false,
  keyChanged: false,
});

describe('message announcements', () => {
  afterEach(() => vi.useRealTimers());

  it('has one polite live region that names the sender, never the text', async () => {
    const backend = mount();
    await screen.findByTestId('conversation-bob');
    const region = screen.getByTestId('message-announcer');
    expect(region).toHaveAttribute('role', 'status');
    expect(region).toHaveClass('visually-hidden');
    expect(region).toBeEmptyDOMElement();

    backend.emit(incoming(CAROL, 11));
    await waitFor(() => expect(region).toHaveTextContent('New message from Carol'));
    expect(region).not.toHaveTextContent('secret');

    // In the open conversation: the name first, still no text.
    await fireEvent.click(screen.getByTestId('conversation-bob'));
    await waitFor(() => expect(backend.messages).toHaveBeenCalled());
    backend.emit(incoming(BOB, 12));
    await waitFor(() => expect(region).toHaveTextContent(/^bob: new message$/));
    expect(region).not.toHaveTextContent('secret');
    expect(
      screen.getAllByRole('status').filter((r) => r.textContent?.includes('new message')),
    ).toHaveLength(1);
  });

  it('says nothing about our own messages and names no one when notifications show nothing', async () => {
    const backend = mount('nothing');
    await screen.findByTestId('conversation-bob');
    await waitFor(() => expect(backend.privacyPage).toHaveBeenCalled());
    await settle();
    const region = screen.getByTestId('message-announcer');
    backend.emit({ ...incoming(BOB, 20), message: msg(20, { outgoing: true }) });
    await settle();
    expect(region).toBeEmptyDOMElement();
    backend.emit(incoming(CAROL, 21));
    await waitFor(() => expect(region).toHaveTextContent(/^New message$/));
    expect(region).not.toHaveTextContent('Carol');
  });

  it('says a repeated announcement once per burst and empties the region afterwards', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const backend = mount();
    await screen.findByTestId('conversation-bob');
    const region = screen.getByTestId('message-announcer');
    backend.emit(incoming(CAROL, 30));
    await waitFor(() => expect(region).toHaveTextContent('New message from Carol'));
    const first = region.firstElementChild;
    backend.emit(incoming(CAROL, 31));
    await Promise.resolve();
    expect(region.firstElementChild).toBe(first);

    // Later, the same words are said again: a fresh node, so screen readers repeat them.
    await vi.advanceTimersByTimeAsync(3000);
    backend.emit(incoming(CAROL, 32));
    await waitFor(() => expect(region.firstElementChild).not.toBe(first));
    expect(region).toHaveTextContent('New message from Carol');

    await vi.advanceTimersByTimeAsync(10_000);
    expect(region).toBeEmptyDOMElement();
  });
});
