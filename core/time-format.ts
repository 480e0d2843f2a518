/**
 * Times and durations as people read them, the same in the CLI and the dashboard (pure,
 * browser-safe): an instant in UTC said by its `Z`, or in the local zone with its offset; a
 * duration in the unit that suits it.
 */

const two = (n: number) => String(n).padStart(2, '0');

/** `+01:00`, `-05:00`, `+00:00`: how far the local zone is ahead of UTC at `d`. */
function offsetOf(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** `2026-12-04 15:20:03 +01:00`: the instant `iso` in the local zone (the browser's, or TZ's), with its offset. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${offsetOf(d)}`;
}

/** `2026-11-22T10:00:00.000Z` → `2026-11-22 10:00:00Z` (UTC, said by its `Z`; compact for tables); `-` for none. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/**
 * A duration for people: `0.3 s`, `45 s`, `12 min`, `48 h`, `30 d` (one decimal under 10 s,
 * then rounded: seconds under 2 minutes, minutes under 2 hours, hours under 3 days, days
 * beyond). Negative durations are `0 s`.
 */
export function humanDuration(seconds: number): string {
  if (seconds < 10) return `${Math.max(0, Number(seconds.toFixed(1)))} s`;
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 3 * 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}
