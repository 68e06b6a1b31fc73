// Locks the app after the configured idle time, or (0, "immediately") as soon as the window is
// hidden or has been left for a few seconds (a short grace so a file picker does not lock it).

const LEAVE_GRACE_MS = 10_000;
const ACTIVITY = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'] as const;

export class IdleLock {
  private ms: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private readonly onActivity = () => this.arm();
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
    window.addEventListener('blur', this.onLeave);
    document.addEventListener('visibilitychange', this.onLeave);
    this.arm();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.leaveTimer);
    for (const ev of ACTIVITY) window.removeEventListener(ev, this.onActivity);
    window.removeEventListener('blur', this.onLeave);
    document.removeEventListener('visibilitychange', this.onLeave);
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (!this.running || this.ms === null || this.ms === 0) return;
    this.timer = setTimeout(() => this.fire(), this.ms);
  }

  private fire(): void {
    if (!this.running) return;
    this.stop();
    this.lock();
  }
}
