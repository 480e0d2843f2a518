/**
 * Durations and sizes as people write them in the config file, the environment and the CLI
 * (`30d`, `100MiB`), and back (the help and README show defaults the same way). Pure.
 */

const DAY = 86_400;
const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY, w: 7 * DAY };

/** The longest duration accepted anywhere (100 years): a date that far back is still a Date. */
export const MAX_DURATION_SECONDS = 100 * 365 * DAY;

/**
 * Seconds in `30d`, `12h`, `15m`, `45s`, `2w` or a bare number of seconds; null if malformed
 * or longer than MAX_DURATION_SECONDS (`1e30d`, `99999999999999d`).
 */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d{1,16})\s*([smhdw]?)\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]) * (DURATION_UNITS[(m[2] || 's').toLowerCase()] ?? 1);
  return Number.isSafeInteger(n) && n > 0 && n <= MAX_DURATION_SECONDS ? n : null;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Bytes in `100MiB`, `1GiB`, `500kB`, `2M` (binary) or a bare number; null if malformed. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return null;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) return null;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `seconds` in the largest unit up to days that divides it (`10m`, `7d`, `1h`), as parseDuration reads it back. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0';
  for (const unit of ['d', 'h', 'm'] as const) {
    const size = DURATION_UNITS[unit] ?? 1;
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** `bytes` in the largest binary unit that divides it (`100MiB`), as parseSize reads it back. */
export function formatSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const size = unit === 'GiB' ? 1024 ** 3 : unit === 'MiB' ? 1024 ** 2 : 1024;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
