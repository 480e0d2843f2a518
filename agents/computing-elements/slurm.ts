/**
 * The SLURM computing element: one `sbatch` per pilot, on this machine or on a login node over
 * SSH (agents/computing-elements/command-runner.ts). A CE queue is a SLURM partition.
 * References are `slurm://<ce>/<jobid>`.
 *
 * CE settings (site config `settings:`):
 *   host?         login node to reach over SSH; absent = run the commands on this machine
 *   user          SSH user (required with host)
 *   port?         SSH port (22)
 *   privateKey?   SecretRef ({ env } or { file }) of the SSH private key
 *   password?     SecretRef of the SSH password
 *   knownHostKey? the login node's host key ("ssh-ed25519 AAAA..." or "SHA256:..."); without
 *                 it the first key seen is trusted and a later change refused
 *   account?      `--account` for every pilot (a queue's settings may give its own)
 *   sbatchArgs?   extra sbatch arguments (string[]), after ours, so they win (a queue's
 *                 settings may give its own, which replace the CE's)
 *   workDir?      where pilot stdout/stderr go ON THE CLUSTER: default the driver's workDir when
 *                 local, `~/pilot-wms` over SSH (a relative path is under the SSH user's home)
 *   maxJobs?      the most jobs this CE's user may have queued or running; with it,
 *                 availableSlots counts them with squeue; without it availableSlots is null
 *
 * submit: `sbatch --parsable --job-name=wms-<first 8 of stamp> --partition=<queue>
 *   --time=<minutes> --mem=<ramMb>M --cpus-per-task=<processors> --no-requeue
 *   --output/--error=<workDir>/<stamp>.%j.out|err --export=ALL,DIRAC_PILOT_STAMP=<stamp>
 *   [--account=...] [sbatchArgs...]` with the wrapper on stdin. The job id is in the file names
 *   so that cleanup, which gets references only, finds them after a restart. `--no-requeue`
 *   keeps a pilot from running twice after a node failure (sbatchArgs may say `--requeue`).
 *   The first failure stops the batch: the pilots not tried are reported failed with its reason.
 * status: `squeue -h -t all --jobs=<ids> -o '%i|%T|%r'` (chunks of 200); `scontrol show job -o`
 *   for a FAILED job's exit code and for ids squeue no longer shows; then `sacct` (accounting or
 *   `-c` job completion, detected once) for ids slurmctld forgot (MinJobAge). Ids nobody knows
 *   are absent from the answer.
 * cancel: `scancel <ids>` (idempotent in SLURM). cleanup: removes `<workDir>/*.<jobid>.out|err`.
 *
 * Failures are words for site admins: submit answers them in `failed` (bad credentials,
 * unreachable host, no sbatch, sbatch's own refusal), status/cancel/cleanup/availableSlots throw.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { mergeCeSettings } from '../../core/site-config.js';
import { localRunner, sshRunner, type CommandResult, type CommandRunner } from './command-runner.js';
import { mapSlurmState, parseSacct, parseSbatch, parseScontrol, parseSqueue, SQUEUE_FORMAT, type SlurmJobInfo } from './slurm-states.js';
import type { CeQueueTarget, ComputingElement, DriverOptions, PilotBackendStatus, PilotSubmission, SubmittedPilot } from './types.js';

export interface SlurmSettings {
  host?: string;
  user?: string;
  port?: number;
  privateKey?: unknown;
  password?: unknown;
  knownHostKey?: string;
  account?: string;
  sbatchArgs?: string[];
  workDir?: string;
  maxJobs?: number;
}

/** Ids per squeue/scancel call (command lines stay short). */
const CHUNK = 200;
const COMMAND_TIMEOUT_MS = 60_000;

/** Reads and checks the CE settings; throws naming the CE and the setting. */
export function slurmSettings(ce: string, s: Readonly<Record<string, unknown>>): SlurmSettings {
  const bad = (what: string): never => {
    throw new Error(`SLURM CE ${ce}: setting ${what}`);
  };
  const str = (k: string): string | undefined => {
    const v = s[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') return bad(`${k} must be a non-empty string`);
    return v;
  };
  const out: SlurmSettings = {};
  const host = str('host');
  const user = str('user');
  const account = str('account');
  const workDir = str('workDir');
  const knownHostKey = str('knownHostKey');
  if (host !== undefined) out.host = host;
  if (user !== undefined) out.user = user;
  if (account !== undefined) out.account = account;
  if (workDir !== undefined) out.workDir = workDir;
  if (knownHostKey !== undefined) out.knownHostKey = knownHostKey;
  if (s['port'] !== undefined) {
    const p = s['port'];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) bad('port must be an integer 1-65535');
    out.port = p as number;
  }
  if (s['maxJobs'] !== undefined) {
    const m = s['maxJobs'];
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0) bad('maxJobs must be an integer >= 0');
    out.maxJobs = m as number;
  }
  if (s['sbatchArgs'] !== undefined) {
    const a = s['sbatchArgs'];
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) bad('sbatchArgs must be a list of strings');
    out.sbatchArgs = [...(a as string[])];
  }
  if (s['privateKey'] !== undefined) out.privateKey = s['privateKey'];
  if (s['password'] !== undefined) out.password = s['password'];
  if (out.host !== undefined && out.user === undefined) bad('user is required with host');
  if (
    out.host === undefined &&
    (out.privateKey !== undefined || out.password !== undefined || out.user !== undefined || out.port !== undefined)
  ) {
    bad('user/port/privateKey/password need host');
  }
  return out;
}

/** The SLURM job id of a reference of this CE, or null. */
export function slurmJobId(reference: string, ce: string): string | null {
  const m = /^slurm:\/\/([^/]+)\/(\d+)$/.exec(reference);
  return m && m[1] === ce ? m[2]! : null;
}

function firstLine(r: CommandResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').filter(Boolean);
  return text.slice(0, 3).join(' / ') || `exit code ${r.code}, no message`;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * A SLURM CE from its registry entry. `deps.runner` replaces the runner the settings describe
 * (tests).
 */
export function createSlurmComputingElement(o: DriverOptions, deps: { runner?: CommandRunner } = {}): ComputingElement {
  const s = slurmSettings(o.ce, o.settings);
  const remote = s.host !== undefined;
  const label = `SLURM CE ${o.ce}`;
  // On the cluster: absolute, or relative to the SSH user's home ("~/x" means "x").
  const clusterDir = remote
    ? (s.workDir ?? 'pilot-wms').replace(/^~\/?/, '') || '.'
    : isAbsolute(s.workDir ?? '')
      ? s.workDir!
      : resolve(o.workDir, s.workDir ?? '.');
  const where = remote ? `ssh ${s.host}` : 'local';

  let runnerP: Promise<CommandRunner> | null = deps.runner ? Promise.resolve(deps.runner) : null;
  let dirReady: Promise<void> | null = null;
  let sacctMode: 'db' | 'comp' | 'none' | null = null;

  function runner(): Promise<CommandRunner> {
    if (!runnerP) {
      const p = (async (): Promise<CommandRunner> => {
        if (!remote) return localRunner(o.env);
        const privateKey = s.privateKey !== undefined ? await o.secret(s.privateKey, `${label}: privateKey`) : undefined;
        const password = s.password !== undefined ? await o.secret(s.password, `${label}: password`) : undefined;
        return sshRunner({
          host: s.host!,
          user: s.user!,
          ...(s.port !== undefined ? { port: s.port } : {}),
          ...(privateKey !== undefined ? { privateKey } : {}),
          ...(password !== undefined ? { password } : {}),
          ...(s.knownHostKey !== undefined ? { knownHostKey: s.knownHostKey } : {}),
        });
      })();
      runnerP = p;
      p.catch(() => {
        if (runnerP === p) runnerP = null;
      });
    }
    return runnerP;
  }

  /** Runs a command; a non-zero exit is returned, not thrown. */
  async function run(argv: string[], stdin?: string): Promise<CommandResult> {
    const r = await runner();
    const res = await r.run(argv, { timeoutMs: COMMAND_TIMEOUT_MS, ...(stdin !== undefined ? { stdin } : {}) });
    if (res.code === 127) throw new Error(`${where}: ${argv[0]}: command not found (${firstLine(res)})`);
    return res;
  }

  function ensureDir(): Promise<void> {
    if (!dirReady) {
      const p = (async () => {
        if (!remote) {
          await mkdir(clusterDir, { recursive: true });
          return;
        }
        const r = await run(['mkdir', '-p', '--', clusterDir]);
        if (r.code !== 0) throw new Error(`${where}: cannot create ${clusterDir}: ${firstLine(r)}`);
      })();
      dirReady = p;
      p.catch(() => {
        if (dirReady === p) dirReady = null;
      });
    }
    return dirReady;
  }

  /** `qs`: the settings of the queue `q` (its account and sbatchArgs over the CE's). */
  function sbatchArgv(q: CeQueueTarget, qs: SlurmSettings, stamp: string): string[] {
    const minutes = Math.max(1, Math.ceil(q.timeLimitSeconds / 60));
    return [
      'sbatch',
      '--parsable',
      `--job-name=wms-${stamp.slice(0, 8)}`,
      `--partition=${q.queue}`,
      `--time=${minutes}`,
      `--mem=${Math.max(1, Math.ceil(q.ramMb))}M`,
      `--cpus-per-task=${Math.max(1, q.processors)}`,
      '--no-requeue',
      `--output=${clusterDir}/${stamp}.%j.out`,
      `--error=${clusterDir}/${stamp}.%j.err`,
      `--export=ALL,DIRAC_PILOT_STAMP=${stamp}`,
      ...(qs.account !== undefined ? [`--account=${qs.account}`] : []),
      ...(qs.sbatchArgs ?? []),
    ];
  }

  async function submitOne(q: CeQueueTarget, qs: SlurmSettings, p: PilotSubmission): Promise<SubmittedPilot> {
    if (!/^[A-Za-z0-9_-]+$/.test(p.stamp)) throw new Error(`stamp ${JSON.stringify(p.stamp)} is not usable in a file name`);
    // sbatch refuses a script without an interpreter line.
    const script = p.wrapper.startsWith('#!') ? p.wrapper : `#!/bin/bash\n${p.wrapper}`;
    const r = await run(sbatchArgv(q, qs, p.stamp), script);
    if (r.code !== 0) throw new Error(`sbatch refused the pilot on ${where}: ${firstLine(r)}`);
    const { jobId } = parseSbatch(r.stdout);
    return { stamp: p.stamp, reference: `slurm://${o.ce}/${jobId}` };
  }

  /** The first state SLURM still has for each id: squeue, then scontrol, then sacct. */
  async function lookup(ids: string[]): Promise<Map<string, SlurmJobInfo>> {
    const found = new Map<string, SlurmJobInfo>();
    for (const chunk of chunks(ids, CHUNK)) {
      const r = await run(['squeue', '-h', '-t', 'all', `--jobs=${chunk.join(',')}`, '-o', SQUEUE_FORMAT]);
      if (r.code !== 0 && !/Invalid job id/i.test(r.stderr)) throw new Error(`${where}: squeue failed: ${firstLine(r)}`);
      if (r.code === 0) for (const j of parseSqueue(r.stdout)) if (chunk.includes(j.jobId)) found.set(j.jobId, j);
    }
    // scontrol: the exit code of a FAILED job (squeue has none), and what squeue did not show.
    for (const id of ids) {
      const known = found.get(id);
      if (known && !/^FAILED\b/.test(known.state)) continue;
      const r = await run(['scontrol', 'show', 'job', '-o', id]);
      if (r.code !== 0) {
        if (/Invalid job id/i.test(r.stderr)) continue;
        if (known) continue; // squeue's answer will do
        throw new Error(`${where}: scontrol show job failed: ${firstLine(r)}`);
      }
      const job = parseScontrol(r.stdout).find((j) => j.jobId === id);
      if (job) found.set(id, job);
    }
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) for (const j of await sacct(missing)) if (missing.includes(j.jobId)) found.set(j.jobId, j);
    return found;
  }

  /** sacct from the accounting database, else from the job-completion log, else nothing. */
  async function sacct(ids: string[]): Promise<SlurmJobInfo[]> {
    if (sacctMode === 'none') return [];
    const out: SlurmJobInfo[] = [];
    for (const chunk of chunks(ids, CHUNK)) {
      const base = ['sacct', '-X', '-n', '-P', `--jobs=${chunk.join(',')}`, '-o', 'JobID,State,ExitCode'];
      const tryMode = async (mode: 'db' | 'comp'): Promise<CommandResult | null> => {
        let r: CommandResult;
        try {
          r = await run(mode === 'db' ? base : [...base.slice(0, 1), '-c', ...base.slice(1)]);
        } catch (e) {
          if (/command not found/.test((e as Error).message)) return null;
          throw e;
        }
        return r.code === 0 ? r : null;
      };
      let r: CommandResult | null = null;
      if (sacctMode === null || sacctMode === 'db') {
        r = await tryMode('db');
        if (r) sacctMode = 'db';
      }
      if (!r && (sacctMode === null || sacctMode === 'comp')) {
        r = await tryMode('comp');
        if (r) sacctMode = 'comp';
      }
      if (!r) {
        // Detected once: no accounting and no job completion log on this cluster.
        if (sacctMode === null) sacctMode = 'none';
        return out;
      }
      // The completion log may hold an id twice (a cluster reset): the last entry wins.
      out.push(...parseSacct(r.stdout));
    }
    return out;
  }

  return {
    type: 'slurm',

    async submit(queue, pilots) {
      const submitted: SubmittedPilot[] = [];
      const failed: { stamp: string; reason: string }[] = [];
      let stop: string | null = null;
      let qs = s;
      try {
        qs = slurmSettings(o.ce, mergeCeSettings('slurm', o.settings, queue.settings));
        await ensureDir();
      } catch (e) {
        const msg = (e as Error).message;
        stop = msg.startsWith(label) ? msg : `${label}: ${msg}`;
      }
      for (const p of pilots) {
        if (stop !== null) {
          failed.push({ stamp: p.stamp, reason: stop });
          continue;
        }
        try {
          submitted.push(await submitOne(queue, qs, p));
        } catch (e) {
          const msg = (e as Error).message;
          const reason = msg.startsWith(label) ? msg : `${label}: ${msg}`;
          failed.push({ stamp: p.stamp, reason });
          stop = `${reason} (not tried after that failure)`;
        }
      }
      return { submitted, failed };
    },

    async status(references) {
      const byId = new Map<string, string[]>();
      for (const ref of references) {
        const id = slurmJobId(ref, o.ce);
        if (id !== null) byId.set(id, [...(byId.get(id) ?? []), ref]);
      }
      const out = new Map<string, PilotBackendStatus>();
      if (byId.size === 0) return out;
      let found: Map<string, SlurmJobInfo>;
      try {
        found = await lookup([...byId.keys()]);
      } catch (e) {
        throw new Error(`${label}: status: ${(e as Error).message}`, { cause: e });
      }
      for (const [id, refs] of byId) {
        const info = found.get(id);
        if (info) for (const ref of refs) out.set(ref, mapSlurmState(info));
      }
      return out;
    },

    async cancel(references) {
      const ids = [...new Set(references.map((r) => slurmJobId(r, o.ce)).filter((x): x is string => x !== null))];
      try {
        for (const chunk of chunks(ids, CHUNK)) {
          const r = await run(['scancel', ...chunk]);
          if (r.code !== 0 && !/Invalid job id/i.test(r.stderr)) throw new Error(`scancel failed: ${firstLine(r)}`);
        }
      } catch (e) {
        throw new Error(`${label}: cancel: ${(e as Error).message}`, { cause: e });
      }
    },

    async cleanup(references) {
      const ids = references.map((r) => slurmJobId(r, o.ce)).filter((x): x is string => x !== null);
      if (ids.length === 0) return;
      try {
        if (!remote) {
          let names: string[];
          try {
            names = await readdir(clusterDir);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
            throw e;
          }
          const wanted = new Set(ids.flatMap((id) => [`.${id}.out`, `.${id}.err`]));
          const doomed = names.filter((n) => {
            const dot = n.indexOf('.');
            return dot > 0 && wanted.has(n.slice(dot));
          });
          await Promise.all(doomed.map((n) => rm(`${clusterDir}/${n}`, { force: true })));
        } else {
          for (const chunk of chunks(ids, CHUNK)) {
            const script = 'd=$1; shift; for id in "$@"; do rm -f -- "$d"/*."$id".out "$d"/*."$id".err; done';
            const r = await run(['sh', '-c', script, 'sh', clusterDir, ...chunk]);
            if (r.code !== 0) throw new Error(`cannot remove pilot output in ${clusterDir}: ${firstLine(r)}`);
          }
        }
      } catch (e) {
        throw new Error(`${label}: cleanup: ${(e as Error).message}`, { cause: e });
      }
    },

    async availableSlots(_queue) {
      if (s.maxJobs === undefined) return null;
      const user = remote ? s.user! : userInfo().username;
      try {
        const r = await run(['squeue', '-h', '-u', user, '-t', 'PENDING,CONFIGURING,RUNNING,COMPLETING,SUSPENDED', '-o', '%i']);
        if (r.code !== 0) throw new Error(`squeue failed: ${firstLine(r)}`);
        const n = r.stdout.split('\n').filter((l) => l.trim()).length;
        return Math.max(0, s.maxJobs - n);
      } catch (e) {
        throw new Error(`${label}: availableSlots: ${(e as Error).message}`, { cause: e });
      }
    },

    async close() {
      const p = runnerP;
      runnerP = null;
      if (p && !deps.runner) await p.then((r) => r.close()).catch(() => {});
    },
  };
}
