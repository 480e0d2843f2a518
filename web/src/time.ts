/**
 * Times as the pages show them, each saying its zone: the browser's local time with its UTC
 * offset (`2026-12-04 15:20:03 +01:00`), the same instant in UTC on hover as the CLI prints it
 * (`2026-12-04 14:20:03Z`), and durations as people read them (`12 min`, `48 h`, as the CLI).
 */
import { h } from 'preact';
import { humanDuration, localTime, shortTime } from '../../core/time-format.js';

/** A duration for people: `45 s`, `12 min`, `48 h`, `30 d` (the CLI's words). */
export const duration = humanDuration;

export { localTime };

/** `2026-12-04 14:20:03Z`: the instant `iso` in UTC, as the CLI prints it. */
export function utcTime(iso: string): string {
  return shortTime(new Date(iso).toISOString());
}

/** An instant on a page: local time with its offset, UTC on hover; `—` when there is none. */
export function Time({ iso }: { iso: string | null | undefined }) {
  return iso ? h('time', { dateTime: iso, title: utcTime(iso) }, localTime(iso)) : h('span', null, '—');
}

/** "in 4 min", "in 2 h": how long until `iso` (at least a minute: a pause that ends now). */
export function fromNow(iso: string): string {
  return `in ${duration(Math.max(60, (Date.parse(iso) - Date.now()) / 1000))}`;
}
