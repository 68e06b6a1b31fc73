import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { Session } from '../lib/session.svelte';
import { fakeBackend, me } from '../tests/fakeBackend';
import Harness from '../tests/Harness.svelte';
import Sidebar from './Sidebar.svelte';

const hit = {
  messageId: 7,
  contactId: 'bb'.repeat(32),
  displayName: 'bob',
  snippet: 'the river at dawn',
  atMs: Date.now(),
};

function mount(backend: ReturnType<typeof fakeBackend>) {
  render(Harness, {
    backend,
    component: Sidebar,
    args: {
      session: new Session(backend),
      me,
      info: null,
      canLock: true,
      onOpen: vi.fn(),
      onNewChat: vi.fn(),
      onPrivacy: vi.fn(),
      onBackup: vi.fn(),
      onLock: vi.fn(),
    },
  });
}

describe('sidebar search', () => {
  it('says when restored messages are not all searchable yet, and searches again once they are', async () => {
    const search = vi
      .fn()
      .mockResolvedValueOnce({ hits: [], indexing: true })
      .mockResolvedValueOnce({ hits: [hit], indexing: false });
    const backend = fakeBackend({ search });
    mount(backend);
    await fireEvent.input(screen.getByTestId('search-input'), { target: { value: 'river' } });
    expect(await screen.findByTestId('search-indexing')).toHaveTextContent(
      'older ones may be missing',
    );
    expect(search).toHaveBeenCalledWith({ query: 'river' });

    backend.emit({ kind: 'search-index-ready' });
    expect(await screen.findByTestId('search-hit')).toHaveTextContent('the river at dawn');
    await waitFor(() => expect(screen.queryByTestId('search-indexing')).toBeNull());
    expect(search).toHaveBeenCalledTimes(2);
  });

  it('does not search again on that event when the results were complete', async () => {
    const search = vi.fn().mockResolvedValue({ hits: [hit], indexing: false });
    const backend = fakeBackend({ search });
    mount(backend);
    await fireEvent.input(screen.getByTestId('search-input'), { target: { value: 'river' } });
    await screen.findByTestId('search-hit');
    backend.emit({ kind: 'search-index-ready' });
    await new Promise((r) => setTimeout(r, 50));
    expect(search).toHaveBeenCalledTimes(1);
    expect(screen.queryByTestId('search-indexing')).toBeNull();
  });
});
