/**
 * Payload isolation: how the job wrapper starts a payload so that it cannot read its pilot's
 * token, the pilot's files, other processes' environments or anything of the machine that is
 * not the system itself. Grids do this with Apptainer (DIRAC) or glexec; here:
 *
 * | mode | what the payload gets | needs |
 * | --- | --- | --- |
 * | `bwrap` | bubblewrap: own PID, IPC, UTS (and cgroup) namespaces and mount namespace, a new `/proc` and `/dev`, a tmpfs `/tmp`, read-only `/usr`, `/etc`, `/opt`, `/cvmfs` and the `/bin` `/lib*` `/sbin` entries as on the host, its job dir writable at its own path (cwd and HOME); network shared; dies with the pilot | `bwrap` that works (user namespaces) |
 * | `user` | runs as `payloadUser` (default `nobody`), its job dir chowned to it | a root pilot |
 * | `none` | runs as the pilot, as before (a single-user laptop) | nothing |
 * | `auto` (default) | `bwrap` when it works, else `user` when the pilot is root, else refused | |
 *
 * A pilot that is not root runs bubblewrap as itself, in an unprivileged user namespace. A root
 * pilot never gives a payload a user namespace of its own (one created by root still touches
 * files as root outside it): bubblewrap sets up the namespaces as root, and inside them
 * `setpriv` (util-linux) becomes `payloadUser` with no capabilities, no supplementary groups and
 * an empty bounding set before it executes the payload; the job dir is chowned to that user
 * first. Bound by root, the job dir needs no path the payload user could walk on the host.
 * Without `setpriv`, a root pilot starts bubblewrap itself as `payloadUser` (spawn's uid/gid),
 * which then needs a job dir that user can reach. bubblewrap is probed once per pilot with the
 * same flags a payload gets.
 *
 * Whatever the mode, a payload's environment is built from nothing (see `baseEnv` and the job
 * wrapper): never a copy of the pilot's own environment. Under bubblewrap it reaches the payload
 * only: bubblewrap (and `setpriv`), which run as root or outside the sandbox, start with the
 * system PATH alone, and a bash inside, already the payload's user, reads the payload's variables
 * from descriptor 3 and executes the payload with them (`ENV_HOP`). A job's `LD_PRELOAD`,
 * `GCONV_PATH` or `LOCPATH` thus never reaches a process outside the sandbox or one that is root.
 *
 * No payload outlives its pilot. Under bubblewrap, `--die-with-parent` and the PID namespace see
 * to it. Under `none` and `user` the payload is started through `setpriv --pdeathsig KILL --`
 * (util-linux >= 2.33) when the node has one that knows the flag: the kernel kills the payload's
 * first process when the pilot's process dies, whatever the pilot died of. The parent-death
 * signal is cleared when credentials change, so it is set after the switch to `payloadUser`
 * (spawn switches before it executes setpriv, which then runs as the payload's user). The
 * payload's descendants are the job wrapper's business (it kills the payload's session) and, when
 * the pilot itself is killed, the bash wrapper's (`payload-sessions.ts`).
 *
 * When the queue's mode cannot be had, `resolvePayloadSandbox` throws an `IsolationUnavailable`
 * whose message says why and what to do; the job wrapper fails the job with it and the job agent
 * stops the pilot (it would fail every job the same way).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, lchown, lstat, readdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

export const ISOLATION_MODES = ['auto', 'bwrap', 'user', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** The minor status of a job refused because its payload cannot be isolated. */
export const ISOLATION_UNAVAILABLE = 'Payload isolation unavailable';

/** What a queue says about isolation (PilotConfig), plus what the pilot knows of its host. */
export interface IsolationSettings {
  /** Default `auto`. */
  mode?: IsolationMode;
  /** The Unix user payloads run as when the pilot is root (default `nobody`). */
  payloadUser?: string;
  /** A bubblewrap binary to use instead of `bwrap` on PATH (e.g. on CVMFS). */
  bwrapPath?: string | null;
  /** The pilot's PATH: where `bwrap` is looked for, and the payload's PATH in mode `none`. */
  hostPath?: string;
}

/** The PATH of isolated payloads: the system's directories only. */
export const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';

/** Thrown when the payload cannot be isolated as the queue asks; the message is for users and site admins. */
export class IsolationUnavailable extends Error {
  readonly code = 'WMS_ISOLATION_UNAVAILABLE';
}

export function isIsolationUnavailable(e: unknown): e is IsolationUnavailable {
  return (e as { code?: unknown } | null)?.code === 'WMS_ISOLATION_UNAVAILABLE';
}

/** One payload start: the program to spawn, its arguments and environment, and the user to spawn it as. */
export interface PayloadCommand {
  file: string;
  args: string[];
  /** The environment `file` is spawned with. */
  env: Record<string, string>;
  /** The payload's environment (`NAME=value\0`...), to be written to the child's descriptor 3 when `file` must not see it. */
  envFd?: Buffer;
  uid?: number;
  gid?: number;
}

/** How one pilot starts its payloads (see the module comment). */
export interface PayloadSandbox {
  readonly kind: 'bwrap' | 'user' | 'none';
  /** For logs: "bubblewrap as nobody (65534:65534)". */
  readonly description: string;
  /** PATH, HOME, TMPDIR, USER and LOGNAME of a payload in `jobDir`. */
  baseEnv(jobDir: string): Record<string, string>;
  /** Makes the job dir the payload's (ownership, a path it can reach). Throws IsolationUnavailable. */
  prepare(workDir: string, jobDir: string): Promise<void>;
  /** Why `exe` cannot be started inside the sandbox (null: it can, or spawn will tell). */
  unreachableExecutable(exe: string, jobDir: string, env: Record<string, string>): Promise<string | null>;
  /** What to spawn for `exe args` in `jobDir`, with the payload's environment `env`. */
  command(exe: string, args: string[], jobDir: string, env: Record<string, string>): PayloadCommand;
}

interface UnixUser {
  name: string;
  uid: number;
  gid: number;
}

/** `name` (or `uid` or `uid:gid`) from the user database; null when unknown. */
export function lookUpUser(name: string): UnixUser | null {
  const users = passwdEntries();
  const numeric = /^(\d+)(?::(\d+))?$/.exec(name);
  if (numeric) {
    const uid = Number(numeric[1]);
    const known = users.find((u) => u.uid === uid);
    return { name: known?.name ?? String(uid), uid, gid: numeric[2] !== undefined ? Number(numeric[2]) : (known?.gid ?? uid) };
  }
  return users.find((u) => u.name === name) ?? null;
}

function passwdEntries(): UnixUser[] {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  const out: UnixUser[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && /^\d+$/.test(f[2] ?? '') && /^\d+$/.test(f[3] ?? ''))
      out.push({ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function executableIn(dirs: string[], name: string): string | null {
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The host's system directories as bubblewrap arguments: read-only binds, and symlinks as on the host. */
function systemBinds(): string[] {
  const args = ['--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc'];
  for (const p of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(p), p);
    else if (st.isDirectory()) args.push('--ro-bind', p, p);
  }
  for (const p of ['/opt', '/cvmfs']) {
    try {
      if (statSync(p).isDirectory()) args.push('--ro-bind', p, p);
    } catch {
      // not on this node
    }
  }
  // Name resolution where /etc/resolv.conf points into /run (systemd-resolved), nothing else of /run.
  args.push('--ro-bind-try', '/run/systemd/resolve', '/run/systemd/resolve');
  return args;
}

/** Namespaces and mounts every bubblewrap payload gets (the probe uses the same). */
function bwrapBaseArgs(userNamespace: boolean): string[] {
  return [
    ...(userNamespace ? ['--unshare-user'] : []),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'payload',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    ...systemBinds(),
    '--tmpfs',
    '/tmp',
  ];
}

/** Host directories whose files a payload in the bubblewrap sandbox sees at the same path (besides its job dir). */
const SYSTEM_ROOTS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt', '/cvmfs'];

/**
 * The job dir's ancestors as empty directories of the sandbox's own root or /tmp, passable but
 * not listable (bubblewrap would make them 0700 and root's when it runs as root).
 */
function parentDirs(jobDir: string): string[] {
  const out: string[] = [];
  for (let p = dirname(resolve(jobDir)); p !== '/' && p !== '/tmp'; p = dirname(p)) out.unshift('--perms', '0711', '--dir', p);
  return out;
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** How bubblewrap is run: as the pilot's own user, as root switching with setpriv, or started as the payload user. */
type BwrapHow = { kind: 'self' } | { kind: 'setpriv'; user: UnixUser; setpriv: string } | { kind: 'as-user'; user: UnixUser };

/**
 * Run by bash inside the sandbox, as the payload's user: exports the `NAME=value` entries read
 * from descriptor 3 (NUL-separated), closes it, and executes the payload (`"$@"`).
 */
const ENV_HOP = 'while IFS= read -r -d "" kv; do export -- "$kv"; done <&3; exec 3<&-; exec -- "$@"';

/** `setpriv` arguments that make the rest of the command run as `u`, with nothing of root left. */
function setprivArgs(setpriv: string, u: UnixUser): string[] {
  return [setpriv, `--reuid=${u.uid}`, `--regid=${u.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
}

/** Runs the probe: bubblewrap with the payload's flags running `true`; the error, or null. */
function probeBwrap(bwrap: string, how: BwrapHow): Promise<string | null> {
  return new Promise((done) => {
    const inner = how.kind === 'setpriv' ? [...setprivArgs(how.setpriv, how.user), 'true'] : ['true'];
    const child = execFile(
      bwrap,
      [...bwrapBaseArgs(how.kind !== 'setpriv'), '--chdir', '/', '--', ...inner],
      {
        env: { PATH: SYSTEM_PATH },
        timeout: 10_000,
        cwd: '/',
        ...(how.kind === 'as-user' ? { uid: how.user.uid, gid: how.user.gid } : {}),
      },
      (err, _stdout, stderr) => {
        if (!err) return done(null);
        const line = String(stderr).trim().split('\n').pop() || err.message;
        done(line.slice(0, 300));
      },
    );
    child.stdin?.end();
  });
}

const probes = new Map<string, Promise<string | null>>();

function probeOnce(bwrap: string, how: BwrapHow): Promise<string | null> {
  const key = `${bwrap}\0${how.kind}\0${how.kind === 'self' ? '' : `${how.user.uid}:${how.user.gid}`}`;
  let p = probes.get(key);
  if (!p) probes.set(key, (p = probeBwrap(bwrap, how)));
  return p;
}

function describeUser(u: UnixUser): string {
  return `${u.name} (${u.uid}:${u.gid})`;
}

/** The parts of `dir`'s path that `user` cannot traverse; empty when it can reach `dir`. */
async function blockedFor(user: UnixUser, dir: string): Promise<string[]> {
  const out: string[] = [];
  let p = resolve(dir);
  const chain: string[] = [];
  for (;;) {
    chain.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of chain) {
    const st = await stat(d).catch(() => null);
    if (!st) {
      out.push(`${d} (missing)`);
      continue;
    }
    const mode = st.mode;
    const ok = st.uid === user.uid ? (mode & 0o100) !== 0 : st.gid === user.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
    if (!ok) out.push(`${d} (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid})`);
  }
  return out;
}

/** Gives the job dir and everything in it to `user`, never following a link. */
async function chownTree(path: string, user: UnixUser): Promise<void> {
  const st = await lstat(path);
  await lchown(path, user.uid, user.gid);
  if (st.isDirectory()) {
    for (const name of await readdir(path)) await chownTree(join(path, name), user);
  }
}

/**
 * Makes the job dir reachable and owned by the payload user: the pilot's work dir gets o+x
 * (others may pass through it, not list it: the pilot's files are 0600 under the wrapper's
 * umask), the job dir and its content are chowned. Refuses when another directory above is
 * closed to that user.
 */
async function handOver(user: UnixUser, workDir: string, jobDir: string): Promise<void> {
  const w = await stat(workDir);
  if ((w.mode & 0o001) === 0) await chmod(workDir, (w.mode & 0o7777) | 0o001);
  const blocked = await blockedFor(user, jobDir);
  if (blocked.length > 0) {
    throw new IsolationUnavailable(
      `the payload user ${describeUser(user)} cannot reach the job directory ${jobDir}: ${blocked.join(', ')} (give the pilot a work dir others may traverse)`,
    );
  }
  await chownTree(jobDir, user);
}

function envFor(jobDir: string, path: string, user: string): Record<string, string> {
  return { PATH: path, HOME: jobDir, TMPDIR: '/tmp', USER: user, LOGNAME: user };
}

/**
 * `setpriv` (on the system PATH) when it knows `--pdeathsig` (util-linux >= 2.33), probed once
 * per pilot; null without one.
 */
function pdeathsigSetpriv(): Promise<string | null> {
  pdeathsigProbe ??= (async () => {
    const setpriv = executableIn(SYSTEM_PATH.split(':'), 'setpriv');
    if (!setpriv) return null;
    return new Promise<string | null>((done) => {
      const child = execFile(
        setpriv,
        ['--pdeathsig', 'KILL', '--', 'true'],
        { env: { PATH: SYSTEM_PATH }, timeout: 10_000, cwd: '/' },
        (err) => done(err ? null : setpriv),
      );
      child.stdin?.end();
    });
  })();
  return pdeathsigProbe;
}
let pdeathsigProbe: Promise<string | null> | null = null;

/**
 * Why `exe` cannot be started (null: it can). Asked before a start through setpriv, so that a
 * missing program is still "Application not found" (setpriv would start, then exit 127).
 */
function missingExecutable(exe: string, jobDir: string, env: Record<string, string>): string | null {
  if (exe.includes('/')) {
    const p = resolve(jobDir, exe);
    try {
      return statSync(p).isFile() ? null : `${exe}: not a file`;
    } catch {
      return `${exe}: no such file`;
    }
  }
  const dirs = (env['PATH'] ?? SYSTEM_PATH).split(':').map((d) => resolve(jobDir, d || '.'));
  return executableIn(dirs, exe) ? null : `${exe} is not found on the payload's PATH (${env['PATH'] ?? SYSTEM_PATH})`;
}

/** `exe args` started through `setpriv --pdeathsig KILL` when there is one (see the module comment). */
function withPdeathsig(setpriv: string | null, exe: string, args: string[]): { file: string; args: string[] } {
  return setpriv ? { file: setpriv, args: ['--pdeathsig', 'KILL', '--', exe, ...args] } : { file: exe, args };
}

class NoSandbox implements PayloadSandbox {
  readonly kind = 'none' as const;
  readonly description: string;
  constructor(
    private readonly hostPath: string,
    private readonly setpriv: string | null,
  ) {
    this.description = `none: the payload runs as the pilot (isolation: none)${setpriv ? '' : '; no setpriv --pdeathsig: it may outlive a killed pilot'}`;
  }
  baseEnv(jobDir: string) {
    return envFor(jobDir, this.hostPath || SYSTEM_PATH, userInfo().username);
  }
  async prepare() {}
  async unreachableExecutable(exe: string, jobDir: string, env: Record<string, string>) {
    return this.setpriv ? missingExecutable(exe, jobDir, env) : null;
  }
  command(exe: string, args: string[], _jobDir: string, env: Record<string, string>): PayloadCommand {
    return { ...withPdeathsig(this.setpriv, exe, args), env };
  }
}

class UserSandbox implements PayloadSandbox {
  readonly kind = 'user' as const;
  readonly description: string;
  constructor(
    private readonly user: UnixUser,
    private readonly setpriv: string | null,
  ) {
    this.description = `user: the payload runs as ${describeUser(user)}`;
  }
  baseEnv(jobDir: string) {
    return envFor(jobDir, SYSTEM_PATH, this.user.name);
  }
  prepare(workDir: string, jobDir: string) {
    return handOver(this.user, workDir, jobDir);
  }
  async unreachableExecutable(exe: string, jobDir: string, env: Record<string, string>) {
    return this.setpriv ? missingExecutable(exe, jobDir, env) : null;
  }
  command(exe: string, args: string[], _jobDir: string, env: Record<string, string>): PayloadCommand {
    // spawn switches to the payload user before it executes setpriv: the parent-death signal is
    // set after the switch, which would clear it.
    return { ...withPdeathsig(this.setpriv, exe, args), env, uid: this.user.uid, gid: this.user.gid };
  }
}

class BwrapSandbox implements PayloadSandbox {
  readonly kind = 'bwrap' as const;
  readonly description: string;
  private readonly base: string[];
  private readonly user: UnixUser | null;
  constructor(
    private readonly bwrap: string,
    private readonly how: BwrapHow,
    /** bash on the system PATH, which the sandbox sees at the same path (`ENV_HOP`). */
    private readonly bash: string,
  ) {
    this.user = how.kind === 'self' ? null : how.user;
    this.base = bwrapBaseArgs(how.kind !== 'setpriv');
    const who = this.user ? describeUser(this.user) : `the pilot's user ${userInfo().username}`;
    this.description = `bubblewrap (${bwrap}) as ${who}${how.kind === 'setpriv' ? ' (set up by root, then setpriv)' : ''}`;
  }
  baseEnv(jobDir: string) {
    return envFor(jobDir, SYSTEM_PATH, this.user?.name ?? userInfo().username);
  }
  async prepare(workDir: string, jobDir: string) {
    if (this.how.kind === 'as-user') await handOver(this.how.user, workDir, jobDir);
    else if (this.how.kind === 'setpriv') await chownTree(jobDir, this.how.user);
  }
  async unreachableExecutable(exe: string, jobDir: string, env: Record<string, string>): Promise<string | null> {
    const visible = (p: string) => within(p, jobDir) || SYSTEM_ROOTS.some((r) => within(p, r));
    if (isAbsolute(exe)) {
      const p = resolve(exe);
      if (!visible(p))
        return `${exe} is outside the payload sandbox (it sees its job directory and the system: ${SYSTEM_ROOTS.join(', ')})`;
      return (await stat(p).catch(() => null))?.isFile() ? null : `${exe}: no such file`;
    }
    if (exe.includes('/')) return null; // relative to the job dir: spawn's business
    const dirs = (env['PATH'] ?? SYSTEM_PATH).split(':').filter((d) => isAbsolute(d) && visible(resolve(d)));
    if (dirs.some((d) => within(resolve(d), jobDir))) return null; // the payload's own bin dir
    return executableIn(dirs, exe) ? null : `${exe} is not found on the payload's PATH (${dirs.join(':')})`;
  }
  command(exe: string, args: string[], jobDir: string, env: Record<string, string>): PayloadCommand {
    const hop = [this.bash, '-c', ENV_HOP, 'payload', exe, ...args];
    const inner = this.how.kind === 'setpriv' ? [...setprivArgs(this.how.setpriv, this.how.user), ...hop] : hop;
    const cmd: PayloadCommand = {
      file: this.bwrap,
      args: [...this.base, ...parentDirs(jobDir), '--bind', jobDir, jobDir, '--chdir', jobDir, '--', ...inner],
      env: { PATH: SYSTEM_PATH },
      envFd: Buffer.from(
        Object.entries(env)
          .map(([k, v]) => `${k}=${v}\0`)
          .join(''),
      ),
    };
    return this.how.kind === 'as-user' ? { ...cmd, uid: this.how.user.uid, gid: this.how.user.gid } : cmd;
  }
}

const FIX = 'install bubblewrap, or set isolation: none on the queue for a single-user machine';

/**
 * The sandbox the queue's settings ask for on this node (probing bubblewrap once). Throws an
 * `IsolationUnavailable` that says why not and what to do.
 */
export async function resolvePayloadSandbox(s: IsolationSettings): Promise<PayloadSandbox> {
  const mode = s.mode ?? 'auto';
  const hostPath = s.hostPath ?? '';
  if (mode === 'none') return new NoSandbox(hostPath, await pdeathsigSetpriv());
  const root = isRoot();
  const userName = s.payloadUser ?? 'nobody';
  const payloadUser = root ? lookUpUser(userName) : null;
  if (root && !payloadUser)
    throw new IsolationUnavailable(`the payload user ${userName} does not exist on this node (set payloadUser on the queue)`);
  if (payloadUser && payloadUser.uid === 0)
    throw new IsolationUnavailable(`the payload user ${userName} is root: payloads never run as root`);
  const whoAmI = `uid ${process.getuid?.() ?? '?'}`;

  if (mode === 'user') {
    if (!payloadUser)
      throw new IsolationUnavailable(
        `isolation: user needs a root pilot to run payloads as ${userName}, and the pilot runs as ${whoAmI} (install bubblewrap and set isolation: bwrap or auto)`,
      );
    return new UserSandbox(payloadUser, await pdeathsigSetpriv());
  }

  const bwrap = s.bwrapPath
    ? executableIn([dirname(s.bwrapPath)], basename(s.bwrapPath))
    : executableIn([...hostPath.split(':'), ...SYSTEM_PATH.split(':')], 'bwrap');
  const bash = executableIn(SYSTEM_PATH.split(':'), 'bash');
  let problem: string | null = s.bwrapPath ? `${s.bwrapPath} is missing or not executable` : 'bubblewrap (bwrap) not found';
  if (bwrap && !bash) problem = `bash is not found in ${SYSTEM_PATH} (bubblewrap starts payloads through it)`;
  else if (bwrap && bash) {
    const setpriv = payloadUser ? executableIn(SYSTEM_PATH.split(':'), 'setpriv') : null;
    const how: BwrapHow = !payloadUser
      ? { kind: 'self' }
      : setpriv
        ? { kind: 'setpriv', user: payloadUser, setpriv }
        : { kind: 'as-user', user: payloadUser };
    problem = await probeOnce(bwrap, how);
    if (problem === null) return new BwrapSandbox(bwrap, how, bash);
    problem = `bubblewrap does not work here (${problem}${how.kind === 'setpriv' ? '' : '; are user namespaces disabled?'})`;
  }

  if (mode === 'bwrap') throw new IsolationUnavailable(`isolation: bwrap, but ${problem} (${FIX})`);
  // auto: the separate user where bubblewrap cannot be had.
  if (payloadUser) return new UserSandbox(payloadUser, await pdeathsigSetpriv());
  throw new IsolationUnavailable(`${problem} and the pilot is not root (${FIX})`);
}

/** Forgets the probes (tests). */
export function resetIsolationProbes(): void {
  probes.clear();
  pdeathsigProbe = null;
}
