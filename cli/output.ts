/**
 * How the CLI prints: aligned tables for people, JSON for machines (`--json`). Pure.
 */

/** Rows as a table with a header line; columns are left-aligned and two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly (string | number | null | undefined)[])[]): string {
  const cells = [header, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

import { localTime, shortTime as utcTime } from '../core/time-format.js';

export { humanDuration } from '../core/time-format.js';

/** Whether instants print in this machine's zone (`--local`) rather than UTC; set per command line by `run`. */
let localTimes = false;

export function printTimesLocally(on: boolean): void {
  localTimes = on;
}

/** An instant for a table: `2026-11-22 10:00:00Z` (UTC), or with `--local` `2026-11-22 11:00:00 +01:00`; `-` for none. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return localTimes ? localTime(iso) : utcTime(iso);
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** `1 2 3 5` → `1-3 5`, for long lists of job ids. */
export function idRanges(ids: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < ids.length) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === (ids[j] as number) + 1) j++;
    out.push(j - i >= 2 ? `${ids[i]}-${ids[j]}` : ids.slice(i, j + 1).join(' '));
    i = j + 1;
  }
  return out.join(' ');
}
