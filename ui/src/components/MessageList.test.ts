import { render } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { msg } from '../tests/fakeBackend';
import MessageList from './MessageList.svelte';

describe('virtual message list', () => {
  it('renders only a bounded window of 100 000 messages', () => {
    const messages = Array.from({ length: 100_000 }, (_, i) => msg(i + 1));
    const { container } = render(MessageList, { messages, fallbackViewport: 600 });
    const rows = container.querySelectorAll('[data-testid="message"]');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThanOrEqual(40);
    expect(container.querySelectorAll('[role="listitem"]').length).toBe(rows.length);
    // Anchored to the bottom: the newest message is among the rendered rows.
    expect(container.querySelector('[data-message-id="100000"]')).not.toBeNull();
    expect(container.querySelector('[data-message-id="1"]')).toBeNull();
  });

  it('shows day separators, delivery labels and expiry countdowns', () => {
    const now = Date.now();
    const messages = [
      msg(2, { outgoing: true, state: 'read', sentAtMs: now - 86_400_000 * 3 }),
      msg(4, { outgoing: true, state: 'queued', sentAtMs: now - 1000 }),
      msg(5, { outgoing: false, expireSecs: 30, expiresAtMs: now + 25_000, sentAtMs: now }),
    ];
    const { getAllByTestId, getByLabelText, getByTestId } = render(MessageList, { messages });
    expect(getAllByTestId('day-separator')).toHaveLength(2);
    expect(getByLabelText('Read')).toBeInTheDocument();
    expect(getByLabelText('Queued — not sent yet')).toBeInTheDocument();
    expect(getByTestId('message-expiry').textContent).toMatch(/2\ds/);
  });
});
