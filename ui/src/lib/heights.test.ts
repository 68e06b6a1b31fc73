import { describe, expect, it } from 'vitest';
import { HeightIndex, visibleRange } from './heights';

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
