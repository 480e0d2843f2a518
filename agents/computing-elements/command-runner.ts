/**
 * Runs a batch system's commands (sbatch, squeue, condor_submit...) on this machine or on a
 * login node over SSH, behind one interface, so a driver is the same in both places.
 *
 * - `localRunner(env)`: child_process.spawn, no shell; a command that outlives `timeoutMs` is
 *   killed (SIGKILL) and the run rejects.
 * - `sshRunner(o)`: the `ssh2` package; one connection, opened on first use and reused; after
 *   it drops, the next run reconnects (a run that finds it dead retries once on a fresh one).
 *   argv is shell-quoted word by word, so the remote shell sees exactly these words.
 *
 * A command that ran answers `{ code, stdout, stderr }` whatever its exit code; the run rejects
 * only when the command could not be run or finish (not found, no connection, bad credentials,
 * timeout), with an Error naming where and what: "cannot connect to login.example.org:22:
 * connection refused", "ssh login.example.org: sbatch: timed out after 60 s (channel closed)",
 * "local: sbatch: command not found (PATH=/usr/bin)".
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin (then closed); stdin is empty otherwise. */
  stdin?: string;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface CommandRunner {
  /** Where the commands run, for messages: "local" or "ssh <host>". */
  readonly where?: string;
  run(argv: string[], opts?: RunOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Commands on this machine; `env` is added to this process's environment. */
export function localRunner(env?: Readonly<Record<string, string>>): CommandRunner {
  const fullEnv = { ...process.env, ...env };
  return {
    where: 'local',
    run(argv, opts = {}) {
      const [cmd, ...args] = argv;
      if (!cmd) return Promise.reject(new Error('local: empty command'));
      const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.stdin.on('error', () => {}); // the command may exit without reading its stdin
        child.once('error', (e: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          const why =
            e.code === 'ENOENT' ? `command not found (PATH=${fullEnv.PATH ?? ''})` : e.code === 'EACCES' ? 'permission denied' : e.message;
          reject(new Error(`local: ${cmd}: ${why}`));
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          if (timedOut) return reject(new Error(`local: ${cmd}: timed out after ${Math.round(timeoutMs / 1000)} s (killed)`));
          resolve({
            code: code ?? 128 + (signal ? signalNumber(signal) : 0),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8'),
          });
        });
        child.stdin.end(opts.stdin ?? '');
      });
    },
    async close() {},
  };
}

function signalNumber(signal: NodeJS.Signals): number {
  const n: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return n[signal] ?? 0;
}

/** One word for a POSIX shell: unchanged when it is safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface SshRunnerOptions {
  host: string;
  port?: number;
  user: string;
  /** A private key (OpenSSH or PEM text). */
  privateKey?: string;
  password?: string;
  /**
   * The server's host key: an OpenSSH public key line ("ssh-ed25519 AAAA..."), its base64 part,
   * or a fingerprint "SHA256:...". Without it the first key seen is trusted and any later
   * change of key is refused for the life of the runner.
   */
  knownHostKey?: string;
  /** Connection set-up limit (default 20 s). */
  readyTimeoutMs?: number;
}

/** A network error code in words ("connection refused"), or null for a code it does not know. */
export function networkReason(code: string | undefined): string | null {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case 'ECONNRESET':
      return 'connection reset';
  }
  return null;
}

function sshReason(e: Error & { code?: string; level?: string }): string {
  if (e.level === 'client-authentication') return 'authentication failed (the key or password was refused)';
  const network = networkReason(e.code);
  if (network) return network;
  if (/Timed out while waiting for handshake/i.test(e.message)) return 'connection timed out (no SSH handshake)';
  return e.message;
}

/** Why no command could run: the login, not the command ("cannot connect to login.example:22: connection refused"). */
function connectFailure(o: SshRunnerOptions, reason: string): string {
  const at = `${o.host}:${o.port ?? 22}`;
  return /^authentication failed/.test(reason) ? `cannot log in to ${o.user}@${at}: ${reason}` : `cannot connect to ${at}: ${reason}`;
}

function hostKeyMatches(expected: string, key: Buffer): boolean {
  const e = expected.trim();
  if (e.startsWith('SHA256:')) {
    const fp = createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
    return e.slice('SHA256:'.length).replace(/=+$/, '') === fp;
  }
  const parts = e.split(/\s+/);
  const b64 = parts.length > 1 ? parts[1]! : parts[0]!;
  return b64 === key.toString('base64');
}

/** Commands on a remote host over one reused SSH connection. */
export function sshRunner(o: SshRunnerOptions): CommandRunner {
  const where = `ssh ${o.host}`;
  let conn: Promise<Client> | null = null;
  let seenKey: string | null = null;
  let closed = false;
  let hostKeyProblem: string | null = null;

  function connect(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const c = new Client();
      let ready = false;
      hostKeyProblem = null;
      const cfg: ConnectConfig = {
        host: o.host,
        port: o.port ?? 22,
        username: o.user,
        readyTimeout: o.readyTimeoutMs ?? 20_000,
        keepaliveInterval: 30_000,
        hostVerifier: (key: Buffer) => {
          if (o.knownHostKey !== undefined) {
            if (hostKeyMatches(o.knownHostKey, key)) return true;
            hostKeyProblem = 'host key verification failed (the server key is not knownHostKey)';
            return false;
          }
          const b64 = key.toString('base64');
          if (seenKey === null) seenKey = b64;
          if (seenKey === b64) return true;
          hostKeyProblem = 'host key verification failed (the server key changed since the first connection)';
          return false;
        },
      };
      if (o.privateKey !== undefined) cfg.privateKey = o.privateKey;
      if (o.password !== undefined) cfg.password = o.password;
      c.once('ready', () => {
        ready = true;
        resolve(c);
      });
      c.on('error', (e: Error & { code?: string; level?: string }) => {
        if (!ready) reject(new Error(hostKeyProblem ?? sshReason(e)));
        conn = null;
      });
      c.on('close', () => {
        if (!ready) reject(new Error(hostKeyProblem ?? 'connection closed during set-up'));
        conn = null;
      });
      try {
        c.connect(cfg);
      } catch (e) {
        // ssh2 throws synchronously on a key it cannot parse
        reject(new Error(`cannot use the private key (${(e as Error).message})`));
      }
    });
  }

  function client(): Promise<Client> {
    if (!conn) {
      const p = connect();
      conn = p;
      p.catch(() => {
        if (conn === p) conn = null;
      });
    }
    return conn;
  }

  function execOnce(c: Client, command: string, opts: RunOptions): Promise<CommandResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      c.exec(command, (err: Error | undefined, stream: ClientChannel) => {
        if (err) return reject(Object.assign(new Error(err.message), { channel: true }));
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        const timer = setTimeout(() => {
          stream.close();
          reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s (channel closed)`));
        }, timeoutMs);
        stream.on('data', (b: Buffer) => out.push(b));
        stream.stderr.on('data', (b: Buffer) => errb.push(b));
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve({
            code: code ?? (signal ? 128 : 255),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errb).toString('utf8'),
          });
        });
        stream.end(opts.stdin ?? '');
      });
    });
  }

  return {
    where,
    async run(argv, opts = {}) {
      const name = argv[0] ?? '';
      if (closed) throw new Error(`${where}: ${name}: the runner is closed`);
      const command = argv.map(shellQuote).join(' ');
      for (let attempt = 0; ; attempt++) {
        let c: Client;
        try {
          c = await client();
        } catch (e) {
          throw new Error(connectFailure(o, (e as Error).message), { cause: e });
        }
        try {
          return await execOnce(c, command, opts);
        } catch (e) {
          // A channel that cannot open means the connection died under us: once more, afresh.
          if ((e as { channel?: boolean }).channel && attempt === 0) {
            conn = null;
            c.end();
            continue;
          }
          throw new Error(`${where}: ${name}: ${(e as Error).message}`, { cause: e });
        }
      }
    },
    async close() {
      closed = true;
      const p = conn;
      conn = null;
      if (p) await p.then((c) => c.end()).catch(() => {});
    },
  };
}
