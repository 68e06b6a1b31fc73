import { describe, expect, it, vi } from 'vitest';
import { HeightIndex, nextHeights, visibleRange } from './heights';

describe('height index', () => {
  it('keeps offsets and lookups right after updates', () => {
    const idx = new HeightIndex([10, 20, 30, 40]);
    expect(idx.total()).toBe(100);
    expect(idx.offset(2)).toBe(30);
    expect(idx.indexAt(0)).toBe(0);
    expect(idx.indexAt(29.9)).toBe(1);
    expect(idx.indexAt(30)).toBe(2);
    expect(idx.indexAt(1e9)).toBe(3);
    idx.set(1, 100);
    expect(idx.offset(2)).toBe(110);
    expect(idx.indexAt(105)).toBe(1);
    expect(idx.total()).toBe(180);
  });

  it('windows 100 000 rows to a handful', () => {
    const idx = new HeightIndex(new Array(100_000).fill(50));
    const r = visibleRange(idx, 50 * 50_000, 500, 5);
    expect(r.start).toBe(50_000 - 5);
    expect(r.end - r.start).toBeLessThanOrEqual(10 + 1 + 10);
    const bottom = visibleRange(idx, idx.total() - 500, 500, 5);
    expect(bottom.end).toBe(100_000);
  });
});

describe('next heights', () => {
  it('reuses measured heights when rows are prepended or appended', () => {
    const key = (n: number) => n;
    const items = [10, 11, 12];
    const index = new HeightIndex([5, 6, 7]);
    const lookup = vi.fn(() => 50);
    expect([...nextHeights({ items, index }, [8, 9, 10, 11, 12], key, lookup)]).toEqual([
      50, 50, 5, 6, 7,
    ]);
    expect(lookup).toHaveBeenCalledTimes(2);
    expect([...nextHeights({ items, index }, [10, 11, 12, 13], key, lookup)]).toEqual([
      5, 6, 7, 50,
    ]);
    expect([...nextHeights({ items, index }, [10, 12], key, () => 1)]).toEqual([1, 1]);
  });
});
