/**
 * The HTCondor computing element: pilots as HTCondor jobs through the command-line tools
 * (condor_submit, condor_q, condor_history, condor_rm), a local pool's schedd or an HTCondor-CE's. References are
 * `htcondorce://<ce>/<cluster>.<proc>`.
 *
 * CE settings (site config, `settings:` of a CE of type `htcondor`):
 * - `schedd` (optional): the schedd's name, `-name <schedd>` on every command (default: the
 *   local schedd; with `remote`, the CE's name).
 * - `pool` (optional): the collector, `-pool <host[:port]>` on every command (with `remote`,
 *   default `<schedd>:9619`, the HTCondor-CE port).
 * - `remote` (default false): submit straight to an HTCondor-CE's schedd: `condor_submit -pool
 *   <pool> -remote <schedd>` (spools the wrapper at submit time) and `-pool <pool> -name <schedd>`
 *   for condor_q, condor_history and condor_rm. The pilot's stdout/stderr then stay in the
 *   CE's spool (no `condor_transfer_data`): pilots send their logs home themselves.
 * - `token` (optional, a SecretRef `{ env }` or `{ file }`): a token, re-read before every
 *   operation (tokens rotate) and written (mode 0600) under `<workDir>/.token/`. For `tokenKind:
 *   'scitoken'` (the default with `remote`: a CE schedd takes SCITOKENS, not IDTOKENS, for WRITE)
 *   commands get `_CONDOR_SCITOKENS_FILE=<file>`, `BEARER_TOKEN_FILE=<file>` and
 *   `_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=SCITOKENS`; for `'idtoken'` (default otherwise)
 *   `_CONDOR_SEC_TOKEN_DIRECTORY=<dir>` with the token as the one file in it. A token that cannot
 *   be read fails the operation with the secret's own message (which names the variable or file).
 *   The token variables go into the environment of the driver's own local runner; a runner given
 *   in the options (SSH, tests) carries its own environment.
 * - `tokenKind` (optional): `'scitoken' | 'idtoken'`, see above.
 * - `submitArgs` (optional, string[]): more condor_submit arguments, before the file. A queue's
 *   settings may give their own `submitArgs` and `extraSubmitLines`, which replace the CE's.
 * - `extraSubmitLines` (optional, string[]): more submit-description lines, after the driver's
 *   and before `queue`; later lines win in a submit description, so this can also switch to
 *   `universe = grid` + `grid_resource = condor <ce> <ce>:9619` (DIRAC's "local schedd" mode) or
 *   add `on_exit_hold = ExitCode =!= 0` + `on_exit_hold_subcode = 55` (mapped to Failed).
 * - `timeoutSeconds` (default 120, as DIRAC): the deadline of each command.
 *
 * Submit: one submit description per call in `workDir` (removed once condor_submit answered),
 * one wrapper per pilot (`<stamp>.sh`, mode 0700, kept until cleanup: a local schedd transfers it
 * when the job starts), one cluster for all of them through `queue stamp in (s1, s2, ...)`, each
 * proc with `DIRAC_PILOT_STAMP=$(stamp)` in its environment and `+WmsPilotStamp` in its ad.
 * `condor_submit -terse` answers `<cluster>.<first> - <cluster>.<last>`; procs follow the stamps'
 * order. Any failure (no binary, schedd down, bad token, refused description) comes back in
 * `failed` for every pilot of the call: nothing is dropped silently.
 *
 * Status: one `condor_q -json -attributes ...` per 100 ids (empty output means none is queued:
 * HTCondor prints nothing then), then one `condor_history -json` for the ids not in the queue
 * (DIRAC re-runs condor_q there by mistake, so its finished pilots come back
 * Unknown). Ids neither knows are absent from the answer. States map as in htcondor-states.ts; held
 * jobs carry their HoldReason. A command that fails throws with its stderr.
 *
 * Cancel: `condor_rm` per 100 ids; "Job c.p not found" (already gone) is ignored. Cleanup removes
 * the pilots' files and `condor_rm`s those still queued (held pilots would stay there forever).
 * availableSlots is null: the schedd's free slots are not this driver's to count.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeCeSettings } from '../../core/site-config.js';
import { localRunner, type CommandResult, type CommandRunner } from './command-runner.js';
import {
  condorAdStatus,
  condorIdOfReference,
  condorJobId,
  condorReference,
  parseJobAdsJson,
  parseSubmitTerse,
  STATUS_ATTRIBUTES,
  type CondorJobAd,
} from './htcondor-states.js';
import type { CeQueueTarget, ComputingElement, DriverOptions, PilotBackendStatus, PilotSubmission, SubmittedPilot } from './types.js';

export interface HtcondorSettings {
  schedd?: string;
  pool?: string;
  remote: boolean;
  token?: unknown;
  tokenKind: 'scitoken' | 'idtoken';
  submitArgs: string[];
  extraSubmitLines: string[];
  timeoutSeconds: number;
}

/** The HTCondor-CE's port (collector and schedd share it). */
export const HTCONDOR_CE_PORT = 9619;
const CHUNK = 100;
const STAMP_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates and completes a CE's settings; throws naming the CE and the setting. */
export function parseHtcondorSettings(ce: string, s: Readonly<Record<string, unknown>>): HtcondorSettings {
  const bad = (what: string) => new Error(`HTCondor CE ${ce}: ${what}`);
  const optString = (k: string): string | undefined => {
    const v = s[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '' || /\s/.test(v)) throw bad(`settings.${k} must be a host or name without spaces`);
    return v;
  };
  const stringList = (k: string): string[] => {
    const v = s[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`settings.${k} must be a list of strings`);
    return v as string[];
  };
  const remote = s['remote'] ?? false;
  if (typeof remote !== 'boolean') throw bad('settings.remote must be true or false');
  const tokenKind = s['tokenKind'] ?? (remote ? 'scitoken' : 'idtoken');
  if (tokenKind !== 'scitoken' && tokenKind !== 'idtoken') throw bad("settings.tokenKind must be 'scitoken' or 'idtoken'");
  const timeoutSeconds = s['timeoutSeconds'] ?? 120;
  if (typeof timeoutSeconds !== 'number' || !(timeoutSeconds > 0)) throw bad('settings.timeoutSeconds must be a positive number');
  const extraSubmitLines = stringList('extraSubmitLines');
  const queueLine = extraSubmitLines.find((l) => /^\s*queue\b/i.test(l) || /\n/.test(l));
  if (queueLine !== undefined) throw bad(`settings.extraSubmitLines: one line each, and no queue statement ("${queueLine}")`);
  const out: HtcondorSettings = {
    remote,
    tokenKind,
    submitArgs: stringList('submitArgs'),
    extraSubmitLines,
    timeoutSeconds,
  };
  const schedd = optString('schedd');
  const pool = optString('pool');
  if (schedd !== undefined) out.schedd = schedd;
  if (pool !== undefined) out.pool = pool;
  if (s['token'] !== undefined) out.token = s['token'];
  return out;
}

/** Quotes a value for the new environment syntax: single quotes, a quote doubled. */
function envValue(v: string): string {
  return /[\s'"]/.test(v) ? `'${v.replace(/'/g, "''").replace(/"/g, '""')}'` : v;
}

/**
 * The submit description of one call: one proc per stamp (`queue stamp in (...)`). Paths are
 * absolute, so the file works from any directory.
 */
export function submitDescription(o: {
  workDir: string;
  queue: CeQueueTarget;
  stamps: readonly string[];
  remote: boolean;
  extraSubmitLines: readonly string[];
  extraEnvironment?: Readonly<Record<string, string>>;
}): string {
  const env = ['DIRAC_PILOT_STAMP=$(stamp)', 'HTCONDOR_JOBID=$(Cluster).$(Process)'];
  for (const [k, v] of Object.entries(o.extraEnvironment ?? {})) env.push(`${k}=${envValue(v)}`);
  const minutes = Math.max(1, Math.ceil(o.queue.timeLimitSeconds / 60));
  const lines = [
    `# pilot-wms: ${o.stamps.length} pilot(s) for ${o.queue.site} / ${o.queue.ce} / ${o.queue.queue}`,
    'universe = vanilla',
    `initialdir = ${o.workDir}`,
    `executable = ${join(o.workDir, '$(stamp).sh')}`,
    'output = $(stamp).out',
    'error = $(stamp).err',
    'log = $(stamp).log',
    'should_transfer_files = YES',
    `when_to_transfer_output = ${o.remote ? 'ON_EXIT' : 'ON_EXIT_OR_EVICT'}`,
    'transfer_output_files = ""',
    `environment = "${env.join(' ')}"`,
    `request_cpus = ${o.queue.processors}`,
    `request_memory = ${o.queue.ramMb}`,
    'kill_sig = SIGTERM',
    '+WmsPilotStamp = "$(stamp)"',
    // What an HTCondor-CE's job router reads to pick the batch resources.
    `+xcount = ${o.queue.processors}`,
    `+maxMemory = ${o.queue.ramMb}`,
    `+maxWallTime = ${minutes}`,
    `+remote_queue = "${o.queue.queue.replace(/"/g, '')}"`,
    ...o.extraSubmitLines,
    `queue stamp in (${o.stamps.join(', ')})`,
    '',
  ];
  return lines.join('\n');
}

export type HtcondorDriverOptions = DriverOptions & {
  /** Runs the commands (default: this machine, with `env` and the token's variables). */
  runner?: CommandRunner;
};

export function createHtcondorComputingElement(o: HtcondorDriverOptions): ComputingElement {
  const s = parseHtcondorSettings(o.ce, o.settings);
  const label = `HTCondor CE ${o.ce}`;
  const tokenDir = join(o.workDir, '.token');
  const tokenFile = join(tokenDir, s.tokenKind === 'scitoken' ? 'scitoken.jwt' : 'wms-idtoken');
  const tokenEnv: Record<string, string> =
    s.token === undefined
      ? {}
      : s.tokenKind === 'scitoken'
        ? { _CONDOR_SCITOKENS_FILE: tokenFile, BEARER_TOKEN_FILE: tokenFile, _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'SCITOKENS' }
        : { _CONDOR_SEC_TOKEN_DIRECTORY: tokenDir };
  const ownRunner = !o.runner;
  const runner = o.runner ?? localRunner({ ...o.env, ...tokenEnv });
  const timeoutMs = s.timeoutSeconds * 1000;

  const schedd = s.remote ? (s.schedd ?? o.ce) : s.schedd;
  const pool = s.remote ? (s.pool ?? `${schedd}:${HTCONDOR_CE_PORT}`) : s.pool;
  /** `-pool P -name S` for condor_q, condor_history and condor_rm. */
  const target = [...(pool ? ['-pool', pool] : []), ...(schedd ? ['-name', schedd] : [])];
  /** condor_submit: `-remote` (spooling) for a CE, `-name` for another local-pool schedd. */
  const submitTarget = [...(pool ? ['-pool', pool] : []), ...(schedd ? [s.remote ? '-remote' : '-name', schedd] : [])];

  async function writeToken(): Promise<void> {
    if (s.token === undefined) return;
    const value = await o.secret(s.token, `${label}: settings.token`);
    await mkdir(tokenDir, { recursive: true, mode: 0o700 });
    await writeFile(tokenFile, value.endsWith('\n') ? value : `${value}\n`, { mode: 0o600 });
    await chmod(tokenFile, 0o600);
  }

  /** Runs one command; a command that could not run at all becomes a clear error. */
  async function run(argv: string[]): Promise<CommandResult> {
    try {
      return await runner.run(argv, { timeoutMs });
    } catch (e) {
      const msg = (e as Error).message;
      if (/command not found|ENOENT/.test(msg))
        throw new Error(
          `${label}: ${argv[0]} is not installed or not on PATH (the HTCondor client tools must be on the agents' host): ${msg}`,
          { cause: e },
        );
      throw new Error(`${label}: ${argv[0]}: ${msg}`, { cause: e });
    }
  }

  function failure(cmd: string, r: CommandResult): Error {
    const text = (r.stderr.trim() || r.stdout.trim() || '(no output)')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' | ');
    return new Error(`${label}: ${cmd} failed (exit ${r.code}): ${text}`);
  }

  async function query(tool: 'condor_q' | 'condor_history', ids: string[]): Promise<Map<string, CondorJobAd>> {
    const found = new Map<string, CondorJobAd>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const r = await run([tool, ...target, '-json', '-attributes', STATUS_ATTRIBUTES.join(','), ...chunk]);
      if (r.code !== 0) throw failure(tool, r);
      let ads: CondorJobAd[];
      try {
        ads = parseJobAdsJson(r.stdout);
      } catch (e) {
        throw new Error(`${label}: ${tool}: ${(e as Error).message}`, { cause: e });
      }
      // condor_history answers newest first: a reused id keeps its latest ad.
      for (const ad of ads) if (!found.has(condorJobId(ad))) found.set(condorJobId(ad), ad);
    }
    return found;
  }

  /** condor_rm; "Job c.p not found" (already left the queue) is not an error. */
  async function remove(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += CHUNK) {
      const r = await run(['condor_rm', ...target, ...ids.slice(i, i + CHUNK)]);
      if (r.code === 0) continue;
      const other = r.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !/^Job \d+\.\d+ not found/.test(l));
      if (other.length > 0 || r.stderr.trim() === '') throw failure('condor_rm', r);
    }
  }

  function idsOf(references: readonly string[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const ref of references) {
      const id = condorIdOfReference(ref, o.ce);
      if (id !== null) out.set(id, ref);
    }
    return out;
  }

  async function removePilotFiles(stamp: string): Promise<void> {
    await Promise.all(['sh', 'out', 'err', 'log'].map((ext) => rm(join(o.workDir, `${stamp}.${ext}`), { force: true })));
  }

  return {
    type: 'htcondor',

    async submit(queue: CeQueueTarget, pilots: readonly PilotSubmission[]) {
      const submitted: SubmittedPilot[] = [];
      const failed: { stamp: string; reason: string }[] = [];
      const ok: PilotSubmission[] = [];
      for (const p of pilots) {
        if (STAMP_RE.test(p.stamp) && !ok.some((q) => q.stamp === p.stamp)) ok.push(p);
        else failed.push({ stamp: p.stamp, reason: `${label}: invalid or repeated pilot stamp "${p.stamp}"` });
      }
      if (ok.length === 0) return { submitted, failed };
      const failAll = async (reason: string) => {
        await Promise.all(ok.map((p) => removePilotFiles(p.stamp)));
        return { submitted, failed: [...failed, ...ok.map((p) => ({ stamp: p.stamp, reason }))] };
      };
      const subFile = join(o.workDir, `submit-${ok[0]!.stamp}.sub`);
      try {
        await mkdir(o.workDir, { recursive: true });
        await writeToken();
        for (const p of ok) {
          const script = join(o.workDir, `${p.stamp}.sh`);
          await writeFile(script, p.wrapper, { mode: 0o700 });
          await chmod(script, 0o700);
        }
        // A queue's submitArgs and extraSubmitLines replace the CE's.
        const qs = parseHtcondorSettings(o.ce, mergeCeSettings('htcondor', o.settings, queue.settings));
        const description = submitDescription({
          workDir: o.workDir,
          queue,
          stamps: ok.map((p) => p.stamp),
          remote: s.remote,
          extraSubmitLines: qs.extraSubmitLines,
        });
        await writeFile(subFile, description, { mode: 0o600 });
        const r = await run(['condor_submit', '-terse', ...submitTarget, ...qs.submitArgs, subFile]);
        if (r.code !== 0) return await failAll(failure('condor_submit', r).message);
        const ids = parseSubmitTerse(r.stdout);
        ok.forEach((p, i) => {
          const id = ids[i];
          if (id === undefined)
            failed.push({ stamp: p.stamp, reason: `${label}: condor_submit answered ${ids.length} job id(s) for ${ok.length} pilot(s)` });
          else submitted.push({ stamp: p.stamp, reference: condorReference(o.ce, id) });
        });
        // The stamp of each job, so cleanup finds the files after a restart.
        await Promise.all(submitted.map((p) => writeFile(join(o.workDir, `${condorIdOfReference(p.reference, o.ce)}.stamp`), p.stamp)));
        return { submitted, failed };
      } catch (e) {
        const msg = (e as Error).message;
        return await failAll(msg.startsWith(label) ? msg : `${label}: ${msg}`);
      } finally {
        await rm(subFile, { force: true });
      }
    },

    async status(references: readonly string[]): Promise<Map<string, PilotBackendStatus>> {
      const out = new Map<string, PilotBackendStatus>();
      const byId = idsOf(references);
      if (byId.size === 0) return out;
      await writeToken();
      const ids = [...byId.keys()];
      const queued = await query('condor_q', ids);
      const gone = ids.filter((id) => !queued.has(id));
      const finished = gone.length > 0 ? await query('condor_history', gone) : new Map<string, CondorJobAd>();
      for (const [id, ref] of byId) {
        const ad = queued.get(id) ?? finished.get(id);
        if (ad) out.set(ref, condorAdStatus(ad));
      }
      return out;
    },

    async cancel(references: readonly string[]): Promise<void> {
      const ids = [...idsOf(references).keys()];
      if (ids.length === 0) return;
      await writeToken();
      await remove(ids);
    },

    async cleanup(references: readonly string[]): Promise<void> {
      const ids = [...idsOf(references).keys()];
      if (ids.length === 0) return;
      for (const id of ids) {
        const stampFile = join(o.workDir, `${id}.stamp`);
        const stamp = await readFile(stampFile, 'utf8').catch(() => null);
        if (stamp !== null && STAMP_RE.test(stamp.trim())) await removePilotFiles(stamp.trim());
        await rm(stampFile, { force: true });
      }
      await writeToken();
      await remove(ids);
    },

    async availableSlots(): Promise<number | null> {
      return null;
    },

    async close(): Promise<void> {
      if (ownRunner) await runner.close();
    },
  };
}
