/**
 * CLI errors: a usage error exits 2, anything else 1. Printed as one line `wms: <message>`,
 * plus one indented line per problem (`file:line:column: message` for JDL problems), never a
 * stack trace. Pure.
 */

export interface ApiProblem {
  message: string;
  line?: number;
  column?: number;
  attribute?: string;
  path?: string;
  jdl?: number;
}

/** A mistake in the command line: exit code 2, help hint. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

/** A failure to report: exit code 1, optional problems and the file names they refer to. */
export class CliError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly problems: ApiProblem[] = [],
    /** File names of the JDLs submitted, in order, to name the file of each JDL problem. */
    readonly files: string[] = [],
    readonly code?: string,
  ) {
    super(message);
  }
}

/** "JDL #2: msg" → [1, "msg"] (the index counts from 0). */
function splitJdlLabel(message: string): [number | null, string] {
  const m = /^JDL #(\d+): (.*)$/s.exec(message);
  return m ? [Number(m[1]) - 1, m[2] as string] : [null, message];
}

/** The lines to print for an error. */
export function formatError(e: unknown): string[] {
  if (e instanceof CliError) {
    const lines = [`wms: ${e.message}`];
    for (const p of e.problems) {
      if (p.line !== undefined && p.column !== undefined) {
        const [index, message] = p.jdl !== undefined ? [p.jdl, p.message] : splitJdlLabel(p.message);
        const file = e.files[index ?? 0] ?? (e.files.length === 1 ? e.files[0] : undefined);
        lines.push(`  ${file ? `${file}:` : ''}${p.line}:${p.column}: ${message}`);
      } else if (p.path) {
        lines.push(`  ${p.path}: ${p.message}`);
      } else {
        lines.push(`  ${p.message}`);
      }
    }
    return lines;
  }
  if (e instanceof UsageError) return [`wms: ${e.message}`, `Run "wms --help" for usage.`];
  const message = e instanceof Error ? e.message : String(e);
  return [`wms: ${message}`];
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return 2;
  return 1;
}
