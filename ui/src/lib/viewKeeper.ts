// Where a bottom-anchored list's view belongs after its rows change. Scroll events arrive a
// frame after the scroll itself, and rows are measured between the two, so every decision
// here starts from the live scroll position, never from the last scroll event alone:
// otherwise a row measured in the meantime would pull the view back to where it was, and a
// fast scroll would judder.
import type { HeightIndex } from './heights';

/** How close to the end (in px) still counts as "at the newest row". */
export const STICK_SLACK = 24;

export class ViewKeeper<K> {
  private stick = true;
  private seenTop = 0;
  private seenTotal = 0;
  private anchor: { key: K; delta: number } | null = null;
  private shift = 0;

  /** Whether the view follows the newest row. */
  get atBottom(): boolean {
    return this.stick;
  }

  /** A scroll event reported the view at `top`; returns whether it is now at the bottom. */
  scrolled(top: number, viewH: number, total: number): boolean {
    this.seenTop = top;
    this.seenTotal = total;
    this.stick = total - (top + viewH) < STICK_SLACK;
    return this.stick;
  }

  /** Follows the newest row again (the "jump to latest" button). */
  follow(): void {
    this.stick = true;
    this.anchor = null;
    this.shift = 0;
  }

  /** Stops following the newest row (the view was moved to a given row). */
  unfollow(top: number, total: number): void {
    this.stick = false;
    this.seenTop = top;
    this.seenTotal = total;
    this.anchor = null;
    this.shift = 0;
  }

  /**
   * The rows are being replaced (older page prepended, new message, expiry). Remembers which
   * row is at the top of the view in the old layout, so the view can be put back on it.
   */
  rowsChanging(
    old: HeightIndex,
    keyAt: (i: number) => K | undefined,
    liveTop: number,
    viewH: number,
  ): void {
    this.catchUp(liveTop, viewH);
    if (this.stick || old.size === 0) return;
    const y = liveTop + this.shift;
    const i = old.indexAt(y);
    const key = keyAt(i);
    this.anchor = key === undefined ? null : { key, delta: y - old.offset(i) };
    this.shift = 0;
  }

  /**
   * A row starting at `start` px changed height by `delta`. If it starts above the view,
   * everything the person is looking at moved down by `delta`: the view follows it.
   */
  rowResized(start: number, delta: number, liveTop: number, viewH: number): void {
    this.catchUp(liveTop, viewH);
    if (!this.stick && start < liveTop + this.shift) this.shift += delta;
  }

  /**
   * Where the view belongs now that the layout has been updated, or null to leave it.
   * `offsetOf` gives a key's offset in the new layout (null once the row is gone).
   */
  target(
    liveTop: number,
    viewH: number,
    total: number,
    offsetOf: (key: K) => number | null,
  ): number | null {
    this.catchUp(liveTop, viewH);
    let target: number | null = null;
    if (this.stick) target = Math.max(0, total - viewH);
    else if (this.anchor) {
      const at = offsetOf(this.anchor.key);
      target = at === null ? null : at + this.anchor.delta;
    } else if (this.shift !== 0) target = liveTop + this.shift;
    this.anchor = null;
    this.shift = 0;
    return target === null ? null : Math.max(0, target);
  }

  /** The view is at `top` with the layout `total` px tall (after a restore). */
  settled(top: number, total: number): void {
    this.seenTop = top;
    this.seenTotal = total;
  }

  // The person scrolled since the last scroll event we saw: judge "at the bottom" from where
  // they are now, in the layout they saw.
  private catchUp(liveTop: number, viewH: number): void {
    if (Math.abs(liveTop - this.seenTop) > 0.5) {
      this.stick = this.seenTotal - (liveTop + viewH) < STICK_SLACK;
      this.seenTop = liveTop;
    }
  }
}
