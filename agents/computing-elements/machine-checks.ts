/**
 * What only a machine can know of a computing element's settings (`wms site apply --check`, and
 * warnings when a document is applied): its secrets are there (environment variables set, files
 * readable), the commands its driver runs are installed (`sbatch` and `squeue` for SLURM, here or
 * on the login node; `condor_submit` and `condor_q` for HTCondor), and its endpoint answers (an
 * SSH login to a SLURM login node, a TCP connection to an HTCondor-CE, OpenNebula's
 * `one.system.version` with the given credentials). One line per problem, naming the CE once and
 * the real cause: "CE lxui.jinr.ru: cannot connect to lxui.jinr.ru:22: connection refused".
 *
 * The answers hold for the machine that runs the checks: the agents read the same secrets and
 * run the same commands where they run. The settings themselves are checked before
 * (core/site-config.ts `ceSettingsProblems`); a CE whose settings are invalid is not checked here.
 */
import { access, constants } from 'node:fs/promises';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { ceSettingDocs, type CeType } from '../../core/site-config.js';
import { networkReason, sshRunner } from './command-runner.js';
import { HTCONDOR_CE_PORT, parseHtcondorSettings } from './htcondor.js';
import { parseOpenNebulaSettings } from './opennebula.js';
import { resolveSecret } from './secrets.js';
import { slurmSettings } from './slurm.js';
import { XmlRpcClient, XmlRpcError } from './xmlrpc.js';

/** A computing element as a registry document gives it. */
export interface CeToCheck {
  name: string;
  type: string;
  settings: Readonly<Record<string, unknown>>;
}

export interface MachineCheckOptions {
  /** Where secrets and PATH are read (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  /** The deadline of each connection (default 10 s). */
  timeoutMs?: number;
}

/** Every problem this machine finds with one CE, one line each (`CE <name>: <cause>`); empty when all is well. */
export async function ceMachineProblems(ce: CeToCheck, o: MachineCheckOptions = {}): Promise<string[]> {
  const env = o.env ?? process.env;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  if ((['slurm', 'htcondor', 'opennebula'] as string[]).includes(ce.type)) {
    for (const d of ceSettingDocs(ce.type as CeType).filter((x) => x.secret && ce.settings[x.key] !== undefined)) {
      await resolveSecret(ce.settings[d.key], `settings.${d.key}`, env).then(
        (v) => secrets.set(d.key, v),
        (e: Error) => problems.push(e.message),
      );
    }
  }
  try {
    if (ce.type === 'slurm') problems.push(...(await slurmProblems(ce, secrets, problems.length > 0, env, timeoutMs)));
    if (ce.type === 'htcondor') problems.push(...(await htcondorProblems(ce, env, timeoutMs)));
    if (ce.type === 'opennebula' && secrets.has('password'))
      problems.push(...(await openNebulaProblems(ce, secrets.get('password')!, timeoutMs)));
  } catch (e) {
    problems.push((e as Error).message.replace(/^(SLURM|HTCondor|OpenNebula) CE \S+: /, ''));
  }
  return problems.map((p) => `CE ${ce.name}: ${p}`);
}

/** The commands of `names` that are not on `PATH` as executables. */
async function missingCommands(names: readonly string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const dirs = (env['PATH'] ?? '').split(delimiter).filter(Boolean);
  const found = async (name: string) => {
    for (const dir of dirs)
      if (
        await access(join(dir, name), constants.X_OK).then(
          () => true,
          () => false,
        )
      )
        return true;
    return false;
  };
  const out: string[] = [];
  for (const name of names) if (!(await found(name))) out.push(name);
  return out;
}

function notInstalled(missing: readonly string[], where: string): string[] {
  return missing.length === 0 ? [] : [`${missing.join(', ')}: not installed ${where}`];
}

/** SLURM: sbatch and squeue here, or an SSH login to the login node and the commands there. */
async function slurmProblems(
  ce: CeToCheck,
  secrets: ReadonlyMap<string, string>,
  secretsMissing: boolean,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<string[]> {
  const s = slurmSettings(ce.name, ce.settings);
  if (s.host === undefined) return notInstalled(await missingCommands(['sbatch', 'squeue'], env), '(not on PATH of this machine)');
  if (secretsMissing) return []; // no login without its key or password
  const privateKey = secrets.get('privateKey');
  const password = secrets.get('password');
  const runner = sshRunner({
    host: s.host,
    user: s.user!,
    readyTimeoutMs: timeoutMs,
    ...(s.port !== undefined ? { port: s.port } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(s.knownHostKey !== undefined ? { knownHostKey: s.knownHostKey } : {}),
  });
  try {
    const script = 'for c in sbatch squeue; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done';
    const r = await runner.run(['sh', '-c', script], { timeoutMs });
    const missing = r.stdout.split('\n').filter(Boolean);
    return notInstalled(missing, `on ${s.host} (not on the SSH user's PATH)`);
  } catch (e) {
    return [(e as Error).message];
  } finally {
    await runner.close();
  }
}

/** HTCondor: condor_submit and condor_q here, and a TCP connection to an HTCondor-CE. */
async function htcondorProblems(ce: CeToCheck, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string[]> {
  const s = parseHtcondorSettings(ce.name, ce.settings);
  const out = notInstalled(await missingCommands(['condor_submit', 'condor_q'], env), '(not on PATH of this machine)');
  if (s.remote) {
    const pool = s.pool ?? `${s.schedd ?? ce.name}:${HTCONDOR_CE_PORT}`;
    const [host, port] = pool.includes(':')
      ? [pool.slice(0, pool.lastIndexOf(':')), Number(pool.slice(pool.lastIndexOf(':') + 1))]
      : [pool, HTCONDOR_CE_PORT];
    const why = await tcpProblem(host, port, timeoutMs);
    if (why) out.push(why);
  }
  return out;
}

/** Null when `host:port` accepts a TCP connection within `timeoutMs`, else why not. */
function tcpProblem(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`cannot connect to ${host}:${port}: connection timed out`);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(`cannot connect to ${host}:${port}: ${networkReason(e.code) ?? e.message}`));
  });
}

/** OpenNebula: `one.system.version` with the CE's user and password. */
async function openNebulaProblems(ce: CeToCheck, password: string, timeoutMs: number): Promise<string[]> {
  const s = parseOpenNebulaSettings(ce.name, ce.settings, true);
  const client = new XmlRpcClient({ endpoint: s.endpoint, timeoutMs });
  try {
    await client.callOne('one.system.version', `${s.user}:${password}`, []);
    return [];
  } catch (e) {
    if (e instanceof XmlRpcError && e.kind === 'transport') {
      const url = new URL(s.endpoint);
      const port = url.port || (url.protocol === 'https:' ? '443' : '80');
      const code = /\b(E[A-Z_]+)\b/.exec(e.message)?.[1];
      return [`cannot connect to ${url.hostname}:${port}: ${networkReason(code) ?? e.message}`];
    }
    return [(e as Error).message];
  }
}
