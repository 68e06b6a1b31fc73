import { describe, expect, it } from 'vitest';
import { appLockMs, formatSecs, parseSecs, TIMER_VALUES } from './durations';
import { controlFor } from './settings';

describe('durations', () => {
  it('round-trips timer values the way the Rust side writes them', () => {
    expect(TIMER_VALUES).toEqual([
      'off',
      '5s',
      '30s',
      '1m',
      '5m',
      '30m',
      '1h',
      '8h',
      '1d',
      '1w',
      '4w',
    ]);
    for (const v of TIMER_VALUES) expect(formatSecs(parseSecs(v) ?? -1)).toBe(v);
  });

  it('reads app-lock values', () => {
    expect(appLockMs('never')).toBeNull();
    expect(appLockMs('immediately')).toBe(0);
    expect(appLockMs('5m')).toBe(300_000);
    expect(appLockMs('1h')).toBe(3_600_000);
  });

  it('picks a switch for on/off and a select otherwise', () => {
    const base = { key: 'k', label: 'K', protectsAgainst: '' };
    expect(controlFor({ ...base, values: 'on | off', value: 'on' }).kind).toBe('switch');
    const sel = controlFor({ ...base, values: 'allow | block', value: 'allow' });
    expect(sel).toEqual({ kind: 'select', options: ['allow', 'block'] });
    const d = controlFor({ ...base, values: 'off, or 5s to 4w (e.g. 30s, 5m)', value: '2h' });
    expect(d.kind === 'select' && d.options[0]).toBe('2h');
  });
});
