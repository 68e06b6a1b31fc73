// Row offsets for the virtual list: a Fenwick tree over row heights, so measuring a row and
// finding the row at a scroll offset are both O(log n) even with 100 000 rows.

export class HeightIndex {
  private tree: Float64Array;
  private h: Float64Array;
  readonly size: number;

  constructor(heights: ArrayLike<number>) {
    this.size = heights.length;
    this.h = Float64Array.from(heights);
    // O(n) build.
    this.tree = new Float64Array(this.size + 1);
    for (let i = 0; i < this.size; i++) {
      const t = this.tree;
      t[i + 1] = (t[i + 1] ?? 0) + (this.h[i] ?? 0);
      const parent = i + 1 + ((i + 1) & -(i + 1));
      if (parent <= this.size) t[parent] = (t[parent] ?? 0) + (t[i + 1] ?? 0);
    }
  }

  /** A copy of all heights, in row order. */
  heights(): Float64Array {
    return this.h.slice();
  }

  height(i: number): number {
    return this.h[i] ?? 0;
  }

  set(i: number, value: number): boolean {
    const old = this.h[i];
    if (old === undefined || old === value) return false;
    this.h[i] = value;
    const d = value - old;
    for (let j = i + 1; j <= this.size; j += j & -j) this.tree[j] = (this.tree[j] ?? 0) + d;
    return true;
  }

  /** Sum of the heights of rows [0, i). */
  offset(i: number): number {
    let s = 0;
    for (let j = Math.min(i, this.size); j > 0; j -= j & -j) s += this.tree[j] ?? 0;
    return s;
  }

  total(): number {
    return this.offset(this.size);
  }

  /** Index of the row that contains offset y (clamped to [0, size-1]). */
  indexAt(y: number): number {
    if (this.size === 0) return 0;
    let pos = 0;
    let rem = y;
    let step = 1;
    while (step * 2 <= this.size) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = pos + step;
      const v = this.tree[next];
      if (next <= this.size && v !== undefined && v <= rem) {
        pos = next;
        rem -= v;
      }
    }
    return Math.min(pos, this.size - 1);
  }
}

/** The rows to render for a viewport, with overscan on both sides. */
export function visibleRange(
  index: HeightIndex,
  scrollTop: number,
  viewport: number,
  overscan: number,
): { start: number; end: number } {
  if (index.size === 0) return { start: 0, end: 0 };
  const first = index.indexAt(Math.max(0, scrollTop));
  const last = index.indexAt(Math.max(0, scrollTop + viewport));
  return {
    start: Math.max(0, first - overscan),
    end: Math.min(index.size, last + overscan + 1),
  };
}

/**
 * Heights for a new item list, reusing the previous list's heights when the change is a pure
 * prepend or append (the common cases: older pages, new messages) so 100 000 rows are not
 * looked up again.
 */
export function nextHeights<T, K>(
  prev: { items: readonly T[]; index: HeightIndex } | null,
  items: readonly T[],
  key: (item: T) => K,
  lookup: (k: K) => number,
): Float64Array {
  const n = items.length;
  const out = new Float64Array(n);
  const first = items[0];
  const last = items[n - 1];
  if (
    prev &&
    prev.items.length > 0 &&
    n >= prev.items.length &&
    first !== undefined &&
    last !== undefined
  ) {
    const p = prev.items;
    const m = p.length;
    const k = n - m;
    const pf = p[0];
    const pl = p[m - 1];
    const shifted = items[k];
    const tail = items[m - 1];
    if (pf !== undefined && pl !== undefined) {
      if (shifted !== undefined && key(shifted) === key(pf) && key(last) === key(pl)) {
        out.set(prev.index.heights(), k);
        for (let i = 0; i < k; i++) out[i] = lookup(key(items[i] as T));
        return out;
      }
      if (tail !== undefined && key(first) === key(pf) && key(tail) === key(pl)) {
        out.set(prev.index.heights(), 0);
        for (let i = m; i < n; i++) out[i] = lookup(key(items[i] as T));
        return out;
      }
    }
  }
  for (let i = 0; i < n; i++) out[i] = lookup(key(items[i] as T));
  return out;
}
