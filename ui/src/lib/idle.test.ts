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

// A system suspend: the wall clock jumps ahead while no timer runs (and, as on Linux, the
// monotonic clock does not move either).
function suspendFor(ms: number) {
  vi.setSystemTime(Date.now() + ms);
}

describe('idle lock across a suspend', () => {
  function started(ms: number) {
    vi.useFakeTimers();
    const lock = vi.fn();
    const idle = new IdleLock(lock);
    idle.start();
    idle.configure(ms);
    return { lock, idle };
  }

  it('locks when the window becomes visible after sleeping past the limit', () => {
    const { lock, idle } = started(60_000);
    vi.advanceTimersByTime(30_000);
    suspendFor(3_600_000);
    expect(lock).not.toHaveBeenCalled();
    document.dispatchEvent(new Event('visibilitychange'));
    expect(lock).toHaveBeenCalledTimes(1);
    idle.stop();
  });

  it('locks on focus and on pageshow after sleeping past the limit', () => {
    for (const [target, ev] of [
      [window, 'focus'],
      [window, 'pageshow'],
    ] as const) {
      const { lock, idle } = started(300_000);
      suspendFor(301_000);
      target.dispatchEvent(new Event(ev));
      expect(lock, ev).toHaveBeenCalledTimes(1);
      idle.stop();
      vi.useRealTimers();
    }
  });

  it('the first activity after waking locks instead of restarting the clock', () => {
    const { lock, idle } = started(60_000);
    suspendFor(120_000);
    window.dispatchEvent(new Event('pointermove'));
    expect(lock).toHaveBeenCalledTimes(1);
    idle.stop();
  });

  it('with no event at all, the next timer check locks soon after waking', () => {
    const { lock, idle } = started(3_600_000);
    vi.advanceTimersByTime(1000);
    suspendFor(4 * 3_600_000);
    expect(lock).not.toHaveBeenCalled();
    vi.advanceTimersByTime(15_000);
    expect(lock).toHaveBeenCalledTimes(1);
    idle.stop();
  });

  it('does not lock on return before the limit, and counts the suspended time', () => {
    const { lock, idle } = started(60_000);
    suspendFor(40_000);
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('focus'));
    expect(lock).not.toHaveBeenCalled();
    // 40 s asleep + 20 s awake reaches the minute.
    vi.advanceTimersByTime(19_999);
    expect(lock).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(lock).toHaveBeenCalledTimes(1);
    idle.stop();
  });

  it('still locks on time when the wall clock is set back', () => {
    const { lock, idle } = started(60_000);
    vi.advanceTimersByTime(10_000);
    vi.setSystemTime(Date.now() - 3_600_000);
    vi.advanceTimersByTime(50_000);
    expect(lock).toHaveBeenCalledTimes(1);
    idle.stop();
  });

  it('never and stop ignore a suspend', () => {
    const { lock, idle } = started(60_000);
    idle.configure(null);
    suspendFor(3_600_000);
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('focus'));
    idle.configure(60_000);
    idle.stop();
    suspendFor(3_600_000);
    window.dispatchEvent(new Event('focus'));
    vi.advanceTimersByTime(120_000);
    expect(lock).not.toHaveBeenCalled();
  });
});
