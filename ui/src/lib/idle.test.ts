import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleLock } from './idle';

afterEach(() => vi.useRealTimers());

describe('idle lock', () => {
  it('locks after the idle time, and activity restarts the clock', () => {
    vi.useFakeTimers();
    const lock = vi.fn();
    const idle = new IdleLock(lock);
    idle.start();
    idle.configure(60_000);
    vi.advanceTimersByTime(50_000);
    window.dispatchEvent(new Event('keydown'));
    vi.advanceTimersByTime(50_000);
    expect(lock).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10_001);
    expect(lock).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(120_000);
    expect(lock).toHaveBeenCalledTimes(1);
  });

  it('never locks when set to never, and stops cleanly', () => {
    vi.useFakeTimers();
    const lock = vi.fn();
    const idle = new IdleLock(lock);
    idle.start();
    idle.configure(null);
    vi.advanceTimersByTime(10 * 86_400_000);
    idle.configure(1000);
    idle.stop();
    vi.advanceTimersByTime(5000);
    expect(lock).not.toHaveBeenCalled();
  });
});
