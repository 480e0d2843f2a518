/**
 * "Did you mean": the known name nearest to a mistyped one (pure). Used where a user names
 * something the system knows a list of: JDL `Site` names against the site registry, `wms`
 * commands against the command table.
 */

/**
 * The name of `sorted` written the same but for case, else one with two neighbouring letters
 * swapped (`jbo`, `job`), else the nearest by edit distance when that distance is small for the
 * name's length (1 up to 4 letters, 2 up to 12, 3 beyond); undefined when none is that near.
 * Ties go to the first in `sorted`.
 */
export function closestName(name: string, sorted: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameLetters = sorted.find((k) => k.toLowerCase() === lower);
  if (sameLetters !== undefined) return sameLetters;
  const swapped = sorted.find((k) => isOneSwap(lower, k.toLowerCase()));
  if (swapped !== undefined) return swapped;
  const limit = name.length <= 4 ? 1 : name.length <= 12 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of sorted) {
    const d = boundedDistance(lower, k.toLowerCase(), bestDistance - 1);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** True when `b` is `a` with two neighbouring letters swapped. */
function isOneSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const i = [...a].findIndex((c, k) => c !== b[k]);
  return i >= 0 && i + 1 < a.length && a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
}

/**
 * Levenshtein distance between `a` and `b` when it is at most `max`, else `max + 1`. Only the
 * band of width 2 max + 1 around the diagonal is computed: O(length x max).
 */
function boundedDistance(a: string, b: string, max: number): number {
  if (max < 0) return Number.POSITIVE_INFINITY;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const big = max + 1;
  let previous = new Array<number>(b.length + 1);
  let current = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) previous[j] = j <= max ? j : big;
  for (let i = 1; i <= a.length; i++) {
    const from = Math.max(1, i - max);
    const to = Math.min(b.length, i + max);
    current.fill(big);
    current[0] = i <= max ? i : big;
    let rowMin = current[0] as number;
    for (let j = from; j <= to; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((previous[j - 1] as number) + cost, (previous[j] as number) + 1, (current[j - 1] as number) + 1, big);
      current[j] = value;
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return big;
    [previous, current] = [current, previous];
  }
  return Math.min(previous[b.length] as number, big);
}
