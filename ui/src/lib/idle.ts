// Locks the app after the configured idle time, or (0) as soon as the window is left.

const ACTIVITY = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'] as const;

export class IdleLock {
  private ms: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private readonly onActivity = () => this.arm();
  private readonly onLeave = () => {
    if (this.ms === 0 && (document.visibilityState === 'hidden' || !document.hasFocus()))
      this.fire();
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
