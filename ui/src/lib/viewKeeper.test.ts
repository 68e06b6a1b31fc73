import { describe, expect, it } from 'vitest';
import { HeightIndex } from './heights';
import { ViewKeeper } from './viewKeeper';

const VIEW = 600;
const rows = (n: number, h = 50) => new HeightIndex(Array.from({ length: n }, () => h));

describe('ViewKeeper', () => {
  it('follows the newest row until the person scrolls away', () => {
    const k = new ViewKeeper<number>();
    expect(k.target(0, VIEW, 5000, () => null)).toBe(4400);
    k.settled(4400, 5000);
    expect(k.scrolled(4000, VIEW, 5000)).toBe(false);
    expect(k.atBottom).toBe(false);
    // A new message at the end does not pull the view down while reading older ones.
    expect(k.target(4000, VIEW, 5050, () => null)).toBeNull();
  });

  it('keeps the row being read still when older rows are prepended', () => {
    const k = new ViewKeeper<number>();
    const old = rows(100);
    k.scrolled(1025, VIEW, old.total()); // row 20, 25 px down
    k.rowsChanging(old, (i) => 1000 + i, 1025, VIEW);
    // 50 older rows of 40 px arrive above: row key 1020 is now at 50*40 + 20*50.
    const offsets = new Map([[1020, 2000 + 1000]]);
    expect(k.target(1025, VIEW, 7000, (key) => offsets.get(key) ?? null)).toBe(3025);
  });

  it('uses the live scroll position, not the last scroll event', () => {
    const k = new ViewKeeper<number>();
    const old = rows(100);
    k.scrolled(2000, VIEW, old.total());
    // The person has scrolled up to 1500 but that scroll event has not arrived yet.
    k.rowsChanging(old, (i) => i, 1500, VIEW);
    expect(k.target(1500, VIEW, 5000, (key) => key * 50)).toBe(1500);
  });

  it('shifts the view when a row above it changes height, and only then', () => {
    const k = new ViewKeeper<number>();
    k.scrolled(1000, VIEW, 5000);
    k.rowResized(900, 22, 1000, VIEW); // above the view: what is read moved down 22 px
    k.rowResized(1200, 40, 1000, VIEW); // inside the view: nothing to follow
    expect(k.target(1000, VIEW, 5062, () => null)).toBe(1022);
    expect(k.target(1022, VIEW, 5062, () => null)).toBeNull();
  });

  it('stops following when the person scrolled up before the scroll event arrived', () => {
    const k = new ViewKeeper<number>();
    k.settled(4400, 5000);
    // Still "at the bottom" as far as events go, but the view is now 1000 px higher.
    expect(k.target(3400, VIEW, 5100, () => null)).toBeNull();
    expect(k.atBottom).toBe(false);
  });

  it('jumps back to the newest row on request', () => {
    const k = new ViewKeeper<number>();
    k.unfollow(100, 5000);
    expect(k.atBottom).toBe(false);
    k.follow();
    expect(k.target(100, VIEW, 5000, () => null)).toBe(4400);
  });
});
