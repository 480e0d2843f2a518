/**
 * The shape of a CLI command and what it gets to run: parsed options, positionals, and an
 * `Io` (output, environment, working directory) so commands never touch `process` and can be
 * tested. Only `cli/main.ts` exits the process and installs signal handlers.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ApiClient, DEFAULT_RETRY_SECONDS } from './client.js';
import { ClientConfigError, resolveClientConfig } from './client-config.js';
import { CliError, UsageError } from './errors.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  home: string;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in help after the option name, e.g. `N` in `--limit N`. */
  value?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** A command that keeps running (the server): main drains it on the first signal. */
export interface LongRunning {
  /** Resolves when the process should exit on its own (never, for a server). */
  done: Promise<number>;
  /** Stops gracefully: finish requests in flight, close the database. */
  drain(): Promise<void>;
  /** A second signal while `drain()` runs: hurry (the server stops its pilots now). Absent: the second signal exits. */
  force?(): void;
  /** What to say on the first signal (default: "draining"); none for a command that just ends. */
  stopMessage?: string | null;
}

export interface CommandSpec {
  /** e.g. `['job', 'submit']`. */
  name: readonly [string, string];
  /** The arguments after the name, e.g. `FILE... [--json]`. */
  usage: string;
  summary: string;
  /** More text for `wms <cmd> --help`. */
  details?: string;
  options: Record<string, OptionSpec>;
  /** Environment variables the command reads, for its help. */
  env?: Readonly<Record<string, string>>;
  /** How many positionals: [min, max]. */
  positionals: readonly [number, number];
  run(values: OptionValues, positionals: string[], io: Io): Promise<number | LongRunning>;
}

export const JSON_OPTION: OptionSpec = { type: 'boolean', description: 'print machine-readable JSON' };

/** Env vars every client command reads. */
export const CLIENT_ENV: Readonly<Record<string, string>> = {
  WMS_URL: 'server URL (default http://127.0.0.1:8080)',
  WMS_TOKEN: 'bearer token (else the config file, else <WMS_DATA_DIR|./var>/admin.token)',
  WMS_DATA_DIR: 'where the laptop-case admin.token is looked for (default ./var)',
  XDG_CONFIG_HOME: 'config file location: $XDG_CONFIG_HOME/pilot-wms/config.json ({url, token})',
  WMS_RETRY_SECONDS: `how long a read waits for the server's database (or a restarting server) to come back (default ${DEFAULT_RETRY_SECONDS}; 0: fail at once)`,
};

/** `WMS_RETRY_SECONDS`, or the default; a usage error when it is not a whole number. */
export function retrySecondsFrom(env: Readonly<Record<string, string | undefined>>): number {
  const v = env['WMS_RETRY_SECONDS'];
  if (v === undefined || v === '') return DEFAULT_RETRY_SECONDS;
  if (!/^\d+$/.test(v)) throw new UsageError(`WMS_RETRY_SECONDS: "${v}" is not a whole number of seconds`);
  return Number(v);
}

export function readTextOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The API client for the server and token the environment points at. */
export function clientFrom(io: Io): ApiClient {
  try {
    const c = resolveClientConfig(io.env, io.home, io.cwd, readTextOrNull);
    return new ApiClient({
      url: c.url,
      token: c.token,
      tokenSource: c.tokenSource,
      retry: { say: (line) => io.err(line), maxWaitSeconds: retrySecondsFrom(io.env) },
    });
  } catch (e) {
    if (e instanceof ClientConfigError) throw new CliError(e.message);
    throw e;
  }
}

/** Positional job ids: positive integers. */
export function jobIds(positionals: string[]): number[] {
  return positionals.map((p) => {
    if (!/^\d+$/.test(p) || Number(p) < 1 || !Number.isSafeInteger(Number(p))) {
      throw new UsageError(`"${p}" is not a job id`);
    }
    return Number(p);
  });
}

export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function strs(values: OptionValues, name: string): string[] {
  const v = values[name];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return typeof v === 'string' ? [v] : [];
}

export function flag(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

/** An integer option, or undefined; a usage error when malformed or below `min`. */
export function int(values: OptionValues, name: string, min = 0): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--${name}: "${v}" is not a whole number >= ${min}`);
  }
  return Number(v);
}

/**
 * The text of `file` (relative to `io.cwd`), or a CliError naming the file, what it was meant
 * to be and why it could not be read (missing, not allowed, a directory).
 */
export async function readTextFile(io: Io, file: string, what: string): Promise<string> {
  try {
    return await readFile(resolve(io.cwd, file), 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : 'cannot read it';
    throw new CliError(`${file}: cannot read the ${what}: ${why}`);
  }
}
