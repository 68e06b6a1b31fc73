// Sends "typing" at most once per interval while the user types, and "stopped" after a pause
// or when the message is sent.

export class TypingNotifier {
  private lastSent = -Infinity;
  private active = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private send: (typing: boolean) => void,
    private intervalMs = 4000,
    private idleMs = 6000,
    private now: () => number = Date.now,
  ) {}

  /** Call on every keystroke that changes the draft. */
  input(draftEmpty: boolean): void {
    if (draftEmpty) {
      this.stop();
      return;
    }
    const t = this.now();
    if (!this.active || t - this.lastSent >= this.intervalMs) {
      this.lastSent = t;
      this.active = true;
      this.send(true);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.stop(), this.idleMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.active) {
      this.active = false;
      this.lastSent = -Infinity;
      this.send(false);
    }
  }
}

/** What a key press in the composer means. */
export function composerKey(e: {
  key: string;
  shiftKey: boolean;
  isComposing?: boolean;
  altKey?: boolean;
  ctrlKey?: boolean;
  metaKey?: boolean;
}): 'send' | 'newline' | 'none' {
  if (e.key !== 'Enter' || e.isComposing) return 'none';
  if (e.shiftKey || e.altKey) return 'newline';
  return 'send';
}
