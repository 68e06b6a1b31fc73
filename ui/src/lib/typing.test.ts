import { afterEach, describe, expect, it, vi } from 'vitest';
import { composerKey, TypingNotifier } from './typing';

afterEach(() => vi.useRealTimers());

describe('composer keys', () => {
  it('Enter sends, Shift+Enter makes a new line, IME composition is left alone', () => {
    expect(composerKey({ key: 'Enter', shiftKey: false })).toBe('send');
    expect(composerKey({ key: 'Enter', shiftKey: true })).toBe('newline');
    expect(composerKey({ key: 'Enter', shiftKey: false, isComposing: true })).toBe('none');
    expect(composerKey({ key: 'a', shiftKey: false })).toBe('none');
  });
});

describe('typing notifier', () => {
  it('sends typing at most once per interval, and stops after a pause', () => {
    vi.useFakeTimers();
    let t = 0;
    const sent: boolean[] = [];
    const n = new TypingNotifier(
      (v) => sent.push(v),
      4000,
      6000,
      () => t,
    );
    for (let i = 0; i < 20; i++) {
      t += 300;
      n.input(false);
    }
    expect(sent).toEqual([true, true]);
    vi.advanceTimersByTime(6000);
    expect(sent).toEqual([true, true, false]);
    n.input(false);
    n.input(true);
    expect(sent).toEqual([true, true, false, true, false]);
  });
});
