// Locks the app after the configured idle time, or (0, "immediately") as soon as the window is
// hidden or has been left for a few seconds (a short grace so a file picker does not lock it).
//
// Idle time is measured from the last activity's timestamp, not by a single timer: timers do not
// run while the system is suspended, so a machine that sleeps past the limit would otherwise wake
// up unlocked. The timer only wakes us to check (at least every CHECK_MS), and so does the window
// coming back (visibilitychange, focus, pageshow) and the first activity after a pause: any of
// them locks once the limit has passed. Elapsed time is the larger of the wall clock (counts
// suspend) and the monotonic clock (immune to the clock being set back).

const LEAVE_GRACE_MS = 10_000;
const CHECK_MS = 15_000;
const ACTIVITY = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'] as const;
const RETURN_WINDOW = ['focus', 'pageshow'] as const;

export class IdleLock {
  private ms: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private lastWall = 0;
  private lastMono = 0;
  private readonly onActivity = () => {
    if (!this.check()) this.arm();
  };
  private readonly onReturn = () => {
    this.check();
  };
  private leaveTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onLeave = () => {
    if (this.ms !== 0) return;
    if (document.visibilityState === 'hidden') this.fire();
    else {
      clearTimeout(this.leaveTimer);
      this.leaveTimer = setTimeout(() => {
        if (!document.hasFocus()) this.fire();
      }, LEAVE_GRACE_MS);
    }
  };

  constructor(private lock: () => void) {}

  configure(ms: number | null): void {
    this.ms = ms;
    this.arm();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const ev of ACTIVITY) window.addEventListener(ev, this.onActivity, { passive: true });
    for (const ev of RETURN_WINDOW) window.addEventListener(ev, this.onReturn);
    window.addEventListener('blur', this.onLeave);
    document.addEventListener('visibilitychange', this.onLeave);
    document.addEventListener('visibilitychange', this.onReturn);
    this.arm();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.leaveTimer);
    for (const ev of ACTIVITY) window.removeEventListener(ev, this.onActivity);
    for (const ev of RETURN_WINDOW) window.removeEventListener(ev, this.onReturn);
    window.removeEventListener('blur', this.onLeave);
    document.removeEventListener('visibilitychange', this.onLeave);
    document.removeEventListener('visibilitychange', this.onReturn);
  }

  /** Restarts the idle clock from now. */
  private arm(): void {
    this.lastWall = Date.now();
    this.lastMono = performance.now();
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.running || this.ms === null || this.ms === 0) return;
    const wait = Math.max(0, Math.min(this.ms - this.elapsed(), CHECK_MS));
    this.timer = setTimeout(() => {
      if (!this.check()) this.schedule();
    }, wait);
  }

  private elapsed(): number {
    return Math.max(Date.now() - this.lastWall, performance.now() - this.lastMono);
  }

  /** Locks if the idle limit has passed; true if it did. */
  private check(): boolean {
    if (!this.running || this.ms === null || this.ms === 0) return false;
    if (this.elapsed() < this.ms) return false;
    this.fire();
    return true;
  }

  private fire(): void {
    if (!this.running) return;
    this.stop();
    this.lock();
  }
}
