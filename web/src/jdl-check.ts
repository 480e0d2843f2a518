/**
 * Checks a JDL in the browser with the same code the services run (core/jdl): syntax,
 * parametric expansion and every attribute against the default limits, InputSandbox entries
 * as at submission (`SB:` or `LFN:` only). The services check again with their own limits; this
 * only spares the user a round trip.
 *
 * Local InputSandbox files are found and rewritten as `wms job submit` does (core/jdl/input-sandbox.ts):
 * the editor attaches them, uploads them as one sandbox, and puts its `SB:<sha256>` in their place.
 */
import { describeJobs } from '../../core/jdl/describe.js';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import { DEFAULT_JOB_LIMITS } from '../../core/job-model.js';
import { planInputSandbox, rewriteInputSandbox } from '../../core/jdl/input-sandbox.js';

export interface JdlCheck {
  /** Jobs the JDL describes (0 when it has problems). */
  jobs: number;
  problems: JdlProblem[];
}

const PREVIEW_IDENTITY = { owner: 'preview', ownerGroup: 'preview', vo: 'preview' };

export function checkJdl(text: string): JdlCheck {
  if (text.trim() === '') return { jobs: 0, problems: [{ message: 'the JDL is empty', line: 1, column: 1 }] };
  try {
    return { jobs: describeJobs(text, PREVIEW_IDENTITY, DEFAULT_JOB_LIMITS, { uploadedInputSandbox: true }).length, problems: [] };
  } catch (e) {
    if (isWmsError(e)) {
      const problems = (e.details as { problems?: JdlProblem[] } | undefined)?.problems;
      return { jobs: 0, problems: problems?.length ? problems : [{ message: e.message, line: 1, column: 1 }] };
    }
    return { jobs: 0, problems: [{ message: String(e), line: 1, column: 1 }] };
  }
}

/** The local files an InputSandbox names: each entry as written, and the file name the job will see. */
export interface LocalFile {
  entry: string;
  name: string;
}

/** The InputSandbox entries of `text` that are files of the user's computer (none when it does not parse). */
export function localInputFiles(text: string): LocalFile[] {
  return (planInputSandbox(text)?.local ?? []).map((entry) => ({ entry, name: entry.split('/').filter(Boolean).pop() ?? entry }));
}

/**
 * Why the files picked (by name) cannot stand for the local entries, or null when they can: each
 * entry needs a picked file of its base name (the job finds it under that name in its working
 * directory), and every picked file must be one of them.
 */
export function attachProblem(wanted: readonly LocalFile[], picked: readonly string[]): string | null {
  const varying = wanted.find((f) => /%(\(|[snj%])/.test(f.entry));
  if (varying) {
    return `InputSandbox entry "${varying.entry}" holds a placeholder: files to attach cannot depend on parameters (list each file)`;
  }
  const names = new Set(wanted.map((f) => f.name));
  if (names.size < wanted.length) return 'two InputSandbox entries have the same file name: the job would see only one';
  const missing = [...names].filter((n) => !picked.includes(n));
  if (missing.length > 0) return `pick ${missing.join(', ')} too: the InputSandbox lists ${missing.length === 1 ? 'it' : 'them'}`;
  const extra = picked.filter((n) => !names.has(n));
  if (extra.length > 0)
    return `${extra.join(', ')} ${extra.length === 1 ? 'is' : 'are'} not in the InputSandbox: add it to the JDL, or pick only the files it lists`;
  return null;
}

/**
 * `text` with its local InputSandbox entries replaced by the sandbox `reference` (`SB:<sha256>`),
 * line numbers kept; unchanged when its local entries are no longer `attached` (edited meanwhile).
 */
export function withSandbox(text: string, attached: readonly LocalFile[], reference: string): string {
  const plan = planInputSandbox(text);
  const same = plan !== null && plan.local.length === attached.length && plan.local.every((e, i) => e === attached[i]?.entry);
  return same ? rewriteInputSandbox(text, plan, reference) : text;
}
