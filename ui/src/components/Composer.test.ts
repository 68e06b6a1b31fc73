import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Composer from './Composer.svelte';

describe('composer', () => {
  it('sends on Enter, keeps Shift+Enter for a new line, and reports typing', async () => {
    const onSend = vi.fn(async () => true);
    const onTyping = vi.fn();
    render(Composer, { onSend, onTyping });
    const box = screen.getByTestId('composer') as HTMLTextAreaElement;
    await fireEvent.input(box, { target: { value: 'hello' } });
    expect(onTyping).toHaveBeenCalledWith(true);
    await fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    expect(onSend).not.toHaveBeenCalled();
    await fireEvent.keyDown(box, { key: 'Enter' });
    expect(onSend).toHaveBeenCalledWith('hello');
    await vi.waitFor(() => expect(box.value).toBe(''));
    expect(onTyping).toHaveBeenLastCalledWith(false);
  });

  it('keeps the draft when sending fails and ignores blank messages', async () => {
    const onSend = vi.fn(async () => false);
    render(Composer, { onSend, onTyping: vi.fn() });
    const box = screen.getByTestId('composer') as HTMLTextAreaElement;
    await fireEvent.keyDown(box, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
    await fireEvent.input(box, { target: { value: 'keep me' } });
    await fireEvent.keyDown(box, { key: 'Enter' });
    await vi.waitFor(() => expect(onSend).toHaveBeenCalled());
    expect(box.value).toBe('keep me');
  });
});
