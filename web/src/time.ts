/**
 * Times as the pages show them, each saying its zone: the browser's local time with its UTC
 * offset (`2026-12-04 15:20:03 +01:00`), the same instant in UTC on hover as the CLI prints it
 * (`2026-12-04 14:20:03Z`), and durations as people read them (`12 min`, `48 h`, as the CLI).
 */
import { h } from 'preact';
import { humanDuration, shortTime } from '../../core/time-format.js';

/** A duration for people: `45 s`, `12 min`, `48 h`, `30 d` (the CLI's words). */
export const duration = humanDuration;

const two = (n: number) => String(n).padStart(2, '0');

/** `+01:00`, `-05:00`, `+00:00`: how far the browser's zone is ahead of UTC at `d`. */
function offsetOf(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** `2026-12-04 15:20:03 +01:00`: the instant `iso` in the browser's zone, with its offset. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${offsetOf(d)}`;
}

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
