import { describe, expect, it } from 'vitest';
import { countdown, dayLabel, groupByDay, sameDay, startsDay } from './time';

const at = (y: number, mo: number, d: number, h = 12, mi = 0) =>
  new Date(y, mo - 1, d, h, mi).getTime();

describe('days and times', () => {
  it('groups messages by local day', () => {
    const items = [
      { sentAtMs: at(2026, 1, 1, 9) },
      { sentAtMs: at(2026, 1, 1, 23, 59) },
      { sentAtMs: at(2026, 1, 2, 0, 1) },
      { sentAtMs: at(2026, 1, 5) },
    ];
    const g = groupByDay(items);
    expect(g.map((x) => x.items.length)).toEqual([2, 1, 1]);
    expect(startsDay(items, 0)).toBe(true);
    expect(startsDay(items, 1)).toBe(false);
    expect(startsDay(items, 2)).toBe(true);
    expect(sameDay(at(2026, 3, 3, 0, 0), at(2026, 3, 3, 23, 59))).toBe(true);
  });

  it('names today and yesterday', () => {
    const now = at(2026, 6, 10, 15);
    const w = { today: 'Today', yesterday: 'Yesterday' };
    expect(dayLabel(at(2026, 6, 10, 1), now, w)).toBe('Today');
    expect(dayLabel(at(2026, 6, 9, 23), now, w)).toBe('Yesterday');
    expect(dayLabel(at(2026, 6, 1), now, w)).not.toBe('Yesterday');
  });

  it('formats countdowns', () => {
    expect(countdown(4_200)).toBe('5s');
    expect(countdown(65_000)).toBe('1m 05s');
    expect(countdown(3_600_000 * 2 + 60_000 * 3)).toBe('2h 03m');
    expect(countdown(86_400_000 * 3 + 3_600_000)).toBe('3d 1h');
    expect(countdown(-5)).toBe('0s');
  });
});
