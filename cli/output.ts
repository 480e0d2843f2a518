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

export { humanDuration, shortTime } from '../core/time-format.js';

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
