/**
 * Splitting a command line into words as a POSIX shell quotes them, without running a shell
 * (no variables, globs or redirections). Whitespace separates words; single quotes keep
 * everything up to the next single quote; double quotes keep everything up to the next double
 * quote, where `\"` and `\\` stand for `"` and `\`; outside quotes a backslash keeps the next
 * character. Two users with one difference: the job wrapper's `Arguments` forgive (an
 * unterminated quote runs to the end, a trailing backslash stays), while a DIRAC workflow's
 * step commands follow Python's `shlex.split`, which refuses both. Pure.
 */

/**
 * The words of `s`. With `refuse`, an unterminated quote or a trailing backslash throws what it
 * makes of shlex's message (`No closing quotation`, `No escaped character`); without, both are
 * kept as written.
 */
export function splitWords(s: string, refuse?: (problem: string) => Error): string[] {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (quote === '"' && c === '\\' && (s[i + 1] === '"' || s[i + 1] === '\\')) word += s[++i];
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
    } else if (c === '\\' && i + 1 < s.length) {
      word += s[++i];
      inWord = true;
    } else {
      if (c === '\\' && refuse) throw refuse('No escaped character');
      word += c;
      inWord = true;
    }
  }
  if (quote !== null && refuse) throw refuse('No closing quotation');
  if (inWord) out.push(word);
  return out;
}
