// Times and days for the message list and conversation previews (local time zone).

export function dayKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function sameDay(a: number, b: number): boolean {
  return dayKey(a) === dayKey(b);
}

/** True when message i starts a new day (the first message always does). */
export function startsDay<T extends { sentAtMs: number }>(items: readonly T[], i: number): boolean {
  const cur = items[i];
  if (!cur) return false;
  const prev = items[i - 1];
  return !prev || !sameDay(prev.sentAtMs, cur.sentAtMs);
}

export function groupByDay<T extends { sentAtMs: number }>(
  items: readonly T[],
): { day: string; items: T[] }[] {
  const out: { day: string; items: T[] }[] = [];
  for (const it of items) {
    const key = dayKey(it.sentAtMs);
    const last = out[out.length - 1];
    if (last && last.day === key) last.items.push(it);
    else out.push({ day: key, items: [it] });
  }
  return out;
}

// Intl formatters are expensive to create (WebKit builds one per toLocale…String call), so
// each format is built once and reused.
const formats = new Map<string, Intl.DateTimeFormat>();
function fmt(name: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = formats.get(name);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, options);
    formats.set(name, f);
  }
  return f;
}

export function formatTime(ms: number): string {
  return fmt('time', { hour: '2-digit', minute: '2-digit' }).format(ms);
}

export function dayLabel(ms: number, now: number, words: { today: string; yesterday: string }) {
  if (sameDay(ms, now)) return words.today;
  if (sameDay(ms, now - 86_400_000)) return words.yesterday;
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return sameYear
    ? fmt('day', { weekday: 'long', day: 'numeric', month: 'long' }).format(ms)
    : fmt('day-year', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(
        ms,
      );
}

/** Preview time in the conversation list: a time today, a short date otherwise. */
export function shortStamp(ms: number, now: number): string {
  if (sameDay(ms, now)) return formatTime(ms);
  if (now - ms < 6 * 86_400_000) return fmt('weekday', { weekday: 'short' }).format(ms);
  return fmt('short-date', { day: 'numeric', month: 'short' }).format(ms);
}

/** "4m 05s"-style countdown for a disappearing message. */
export function countdown(remainingMs: number): string {
  const s = Math.max(0, Math.ceil(remainingMs / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}
