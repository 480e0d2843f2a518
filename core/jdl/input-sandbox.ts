/**
 * Local files in a JDL's InputSandbox: find them, and rewrite the JDL so that they are
 * replaced by one `SB:<sha256>` entry (the archive the CLI, or the dashboard's editor, packs and
 * uploads). `LFN:` and `SB:` entries, URLs and placeholders stay as they are. Pure.
 *
 * The rewrite touches only the InputSandbox value and keeps the line count, so line and column
 * numbers of every other attribute in the server's error messages still point into the user's
 * file.
 */
import { getAttribute, parseJdl } from './parser.js';

/**
 * True for an entry a client must upload: not `LFN:`, `SB:`, a URL, nor a parametric
 * placeholder (`%s`, `%(x)s`: each job gets its value on the server, as DIRAC's client leaves
 * them too).
 */
export function isLocalEntry(entry: string): boolean {
  return !/^(LFN:|SB:|%s|%\()/i.test(entry) && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(entry);
}

export interface InputSandboxPlan {
  /** Every entry, in order. */
  entries: string[];
  /** The local ones, in order. */
  local: string[];
  /** Offsets of the InputSandbox value in the text: [start, end). */
  span: [number, number];
}

/**
 * The InputSandbox of a JDL text, or null when it has none, has no local entry, or does not
 * parse (then the server reports the syntax error with its position).
 */
export function planInputSandbox(text: string): InputSandboxPlan | null {
  let attribute;
  try {
    attribute = getAttribute(parseJdl(text), 'InputSandbox');
  } catch {
    return null;
  }
  if (!attribute) return null;
  const values = Array.isArray(attribute.value) ? attribute.value : [attribute.value];
  const entries = values.filter((v): v is string => typeof v === 'string');
  const local = entries.filter(isLocalEntry);
  if (local.length === 0) return null;
  const start = offsetOf(text, attribute.valueLine, attribute.valueColumn);
  return { entries, local, span: [start, valueEnd(text, start)] };
}

/** The text with the InputSandbox value replaced: non-local entries kept, `sandboxRef` added. */
export function rewriteInputSandbox(text: string, plan: InputSandboxPlan, sandboxRef: string): string {
  const kept: string[] = [];
  let placed = false;
  for (const e of plan.entries) {
    if (!isLocalEntry(e)) kept.push(e);
    else if (!placed) {
      kept.push(sandboxRef);
      placed = true;
    }
  }
  const [start, end] = plan.span;
  const lines = (text.slice(start, end).match(/\n/g) ?? []).length;
  const value = `{ ${kept.map(quote).join(', ')} }`;
  return text.slice(0, start) + value + '\n'.repeat(lines) + text.slice(end);
}

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The offset of a 1-based line and column. */
export function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) return text.length;
    offset = nl + 1;
  }
  return Math.min(offset + column - 1, text.length);
}

/** The offset just past the value that starts at `start` (a string, a list, or a bare word). */
export function valueEnd(text: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      if (depth === 0) return i;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (depth === 0) return i; // the enclosing ad's ']'
      depth--;
      if (depth === 0) return i + 1;
    } else if (c === ';' && depth === 0) return i;
    i++;
  }
  return i;
}
