// Disappearing-message timers and app-lock values, in the words the Rust side uses.

const UNITS: [string, number][] = [
  ['w', 604_800],
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** Seconds → `off`, `30s`, `5m`, `1w` (largest unit that divides exactly). */
export function formatSecs(secs: number): string {
  if (secs <= 0) return 'off';
  for (const [u, n] of UNITS) if (secs % n === 0) return `${secs / n}${u}`;
  return `${secs}s`;
}

/** `30s`, `5m`, `off` → seconds; null when unreadable. */
export function parseSecs(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const m = /^(\d+)\s*([smhdw])$/.exec(t);
  if (!m) return null;
  const unit = UNITS.find(([u]) => u === m[2]);
  return unit ? Number(m[1]) * unit[1] : null;
}

/** The timer choices offered for a conversation. */
export const TIMER_SECS = [
  0,
  5,
  30,
  60,
  300,
  1800,
  3600,
  8 * 3600,
  86_400,
  604_800,
  4 * 604_800,
] as const;

/** Default-disappearing setting choices, as setting values. */
export const TIMER_VALUES = TIMER_SECS.map(formatSecs);

/** App-lock setting choices. */
export const APP_LOCK_VALUES = ['never', 'immediately', '1m', '5m', '15m', '30m', '1h', '4h', '1d'];

/**
 * App-lock setting value → idle milliseconds before locking; 0 = lock as soon as the window is
 * left; null = never.
 */
export function appLockMs(value: string | undefined): number | null {
  if (!value) return null;
  const v = value.trim().toLowerCase();
  if (v === 'never' || v === 'off') return null;
  if (v === 'immediately' || v === '0') return 0;
  const s = parseSecs(v);
  return s === null ? null : s * 1000;
}
