/**
 * CLI errors: a usage error exits 2, anything else 1. Printed as one line `wms: <message>`,
 * plus one indented line per problem (`file:line:column: message` for JDL problems), never a
 * stack trace. Pure.
 */

import { ApiError, type ApiProblem } from '../io/api-error.js';

export type { ApiProblem };

/** A mistake in the command line: exit code 2, help hint. */
export class UsageError extends Error {
  readonly exitCode = 2;

  /** The help to print after the message: the command's or the group's at fault (else a pointer to `wms --help`). */
  constructor(
    message: string,
    public help?: string,
  ) {
    super(message);
  }
}

/**
 * A failure to report: exit code 1, optional problems and the file names they refer to. The
 * API's error (`io/api-error.ts`) with what the CLI prints: a failed call keeps its `code`,
 * `status` and `problems`; a local failure has status 0 and usually no code.
 */
export class CliError extends ApiError {
  readonly exitCode = 1;
  constructor(
    message: string,
    problems: ApiProblem[] = [],
    /** File names of the JDLs submitted, in order, to name the file of each JDL problem. */
    readonly files: string[] = [],
    code?: string,
    status = 0,
  ) {
    super(message, status, code, { problems });
  }
}

/** "JDL #2: msg" → [1, "msg"] (the index counts from 0). */
function splitJdlLabel(message: string): [number | null, string] {
  const m = /^JDL #(\d+): (.*)$/s.exec(message);
  return m ? [Number(m[1]) - 1, m[2] as string] : [null, message];
}

/** The lines to print for an error. */
export function formatError(e: unknown): string[] {
  if (e instanceof ApiError) {
    const lines = [`wms: ${e.message}`];
    const files = e instanceof CliError ? e.files : [];
    for (const p of e.problems) {
      if (p.line !== undefined && p.column !== undefined) {
        const [index, message] = p.jdl !== undefined ? [p.jdl, p.message] : splitJdlLabel(p.message);
        const file = files[index ?? 0] ?? (files.length === 1 ? files[0] : undefined);
        lines.push(`  ${file ? `${file}:` : ''}${p.line}:${p.column}: ${message}`);
      } else if (p.path) {
        lines.push(`  ${p.path}: ${p.message}`);
      } else {
        lines.push(`  ${p.message}`);
      }
    }
    return lines;
  }
  if (e instanceof UsageError) return [`wms: ${e.message}`, ...(e.help !== undefined ? ['', e.help] : [`Run "wms --help" for usage.`])];
  const message = e instanceof Error ? e.message : String(e);
  return [`wms: ${message}`];
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return 2;
  return 1;
}
