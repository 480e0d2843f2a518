/** Times as the pages show them. */

/** "in 4 min", "in 2 h": how long until `iso` (at least a minute: a pause that ends now). */
export function fromNow(iso: string): string {
  const minutes = Math.max(1, Math.round((Date.parse(iso) - Date.now()) / 60_000));
  return minutes < 120 ? `in ${minutes} min` : `in ${Math.round(minutes / 60)} h`;
}
