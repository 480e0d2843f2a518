/**
 * Fixtures for running the rendered pilot wrapper (agents/pilot-wrapper.ts) with real bash:
 *
 * - `startWrapperServer()`: a node:http server that serves `/pilot/pilot.tar.gz` (or answers
 *   404, or holds the request) and records `POST /api/pilots/self/status`;
 * - `buildTestBundle()`: a pilot.tar.gz whose pilot.mjs writes what it saw (environment, cwd,
 *   node, the wrapper log, the token file it was handed, its parent's environment) to
 *   `$TEST_PILOT_OUT` and exits with `$TEST_PILOT_EXIT`; with
 *   `TEST_PILOT_WAIT_FOR_SIGNAL=1` it waits for SIGTERM, writes `$TEST_PILOT_OUT.sigterm`, exits;
 * - `createSandbox()`: a temporary tree with PATH pieces (a bare tool dir without node, one
 *   dir per optional tool, a real node, a fake node printing v18, a fake `stat` that answers
 *   chosen file-system types) and helpers to run a wrapper and poll for files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as tar from 'tar';

/** One request the test server saw. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A recorded `POST /api/pilots/self/status`. */
export interface StatusReport {
  authorization: string | undefined;
  body: { status?: unknown; reason?: unknown; exitCode?: unknown };
}

export type BundleMode = 'serve' | 'missing' | 'hold';

export interface WrapperServer {
  url: string;
  requests: RecordedRequest[];
  reports: StatusReport[];
  /** serve: the bundle; missing: 404; hold: never answer (until close). */
  bundleMode: BundleMode;
  close(): Promise<void>;
}

export async function startWrapperServer(bundle: Buffer): Promise<WrapperServer> {
  const held: (() => void)[] = [];
  const state: WrapperServer = {
    url: '',
    requests: [],
    reports: [],
    bundleMode: 'serve',
    close: async () => {
      for (const release of held) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.method === 'GET' && req.url === '/pilot/pilot.tar.gz') {
        if (state.bundleMode === 'hold') {
          held.push(() => res.destroy());
          return;
        }
        if (state.bundleMode === 'missing') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"WMS_NOT_FOUND"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': bundle.length }).end(bundle);
        return;
      }
      if (req.method === 'POST' && req.url === '/api/pilots/self/status') {
        let parsed: StatusReport['body'];
        try {
          parsed = JSON.parse(body) as StatusReport['body'];
        } catch {
          res.writeHead(400).end('bad json');
          return;
        }
        state.reports.push({ authorization: req.headers.authorization, body: parsed });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"Failed"}');
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

const TEST_PILOT = `import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
const out = process.env.TEST_PILOT_OUT;
const code = Number(process.env.TEST_PILOT_EXIT ?? 0);
const write = (path, data) => { writeFileSync(path + '.tmp', data); renameSync(path + '.tmp', path); };
let wrapperLog = null;
try { wrapperLog = readFileSync(process.env.WMS_PILOT_WRAPPER_LOG, 'utf8'); } catch {}
let tokenFile = null;
const tf = process.env.WMS_PILOT_TOKEN_FILE;
if (tf) {
  try {
    const st = statSync(tf);
    tokenFile = { path: tf, mode: st.mode & 0o777, content: readFileSync(tf, 'utf8') };
  } catch (e) {
    tokenFile = { path: tf, error: String(e.code) };
  }
}
let parentEnviron = null;
try { parentEnviron = readFileSync('/proc/' + process.ppid + '/environ', 'latin1'); } catch {}
const waits = process.env.TEST_PILOT_WAIT_FOR_SIGNAL === '1';
if (waits) {
  process.on('SIGTERM', () => { write(out + '.sigterm', String(Date.now())); process.exit(code); });
  setInterval(() => {}, 1000);
}
write(out, JSON.stringify({ cwd: process.cwd(), env: process.env, execPath: process.execPath, version: process.version, wrapperLog, tokenFile, parentEnviron }));
if (!waits) process.exit(code);
`;

/** What the test pilot wrote. */
export interface PilotSeen {
  cwd: string;
  env: Record<string, string>;
  execPath: string;
  version: string;
  wrapperLog: string | null;
  /** The file named by WMS_PILOT_TOKEN_FILE as the pilot found it. */
  tokenFile: { path: string; mode?: number; content?: string; error?: string } | null;
  /** The environment of the pilot's parent (the wrapper's bash), NUL-separated. */
  parentEnviron: string | null;
}

/** A pilot.tar.gz holding the test pilot.mjs, and its SHA-256. */
export async function buildTestBundle(): Promise<{ bytes: Buffer; sha256: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'wms-bundle-'));
  try {
    await writeFile(join(dir, 'pilot.mjs'), TEST_PILOT);
    await tar.create({ gzip: true, cwd: dir, file: join(dir, 'pilot.tar.gz'), portable: true }, ['pilot.mjs']);
    const bytes = await readFile(join(dir, 'pilot.tar.gz'));
    return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The tools the wrapper body uses besides bash builtins (tar runs gzip for -z). */
const CORE_TOOLS = ['bash', 'date', 'mktemp', 'stat', 'rm', 'chmod', 'tar', 'gzip', 'uname', 'id', 'timeout'];

function which(name: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new Error(`wrapper tests need ${name} on PATH`);
}

export interface WrapperRun {
  child: ChildProcess;
  stderr(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: Buffer }>;
}

export interface Sandbox {
  root: string;
  /** Tools without node, curl, wget or sha256sum. */
  coreBin: string;
  /** One dir per optional tool: curl, wget, sha256sum. */
  toolBin: Record<'curl' | 'wget' | 'sha256sum', string>;
  /** Holds `node`, a link to the node running the tests. */
  nodeBin: string;
  /** A directory holding bin/node that prints v18.19.0. */
  fakeNodeDir: string;
  /** Holds a `stat` that answers `fsTypes` for `stat -f -c %T DIR` and runs the real stat otherwise. */
  fakeStatBin: string;
  /** A fresh directory under the sandbox. */
  dir(name: string): Promise<string>;
  /** Makes the fake stat report `type` for `path`. */
  setFsType(path: string, type: string): Promise<void>;
  /** Writes the script and runs it (it must start with a shebang). */
  run(script: string, env: Record<string, string>, options?: { detached?: boolean }): Promise<WrapperRun>;
  cleanup(): Promise<void>;
}

export async function createSandbox(): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'wms-wrapper-'));
  const linkDir = async (name: string, tools: Record<string, string>) => {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    for (const [tool, target] of Object.entries(tools)) await symlink(target, join(dir, tool));
    return dir;
  };
  const coreBin = await linkDir('core-bin', Object.fromEntries(CORE_TOOLS.map((t) => [t, which(t)])));
  const toolBin = {
    curl: await linkDir('curl-bin', { curl: which('curl') }),
    wget: await linkDir('wget-bin', { wget: which('wget') }),
    sha256sum: await linkDir('sha256sum-bin', { sha256sum: which('sha256sum') }),
  };
  const nodeBin = await linkDir('node-bin', { node: process.execPath });

  const fakeNodeDir = join(root, 'fake-node');
  await mkdir(join(fakeNodeDir, 'bin'), { recursive: true });
  const fakeNode = join(fakeNodeDir, 'bin', 'node');
  await writeFile(
    fakeNode,
    '#!/bin/sh\nif [ "$1" = --version ]; then echo v18.19.0; exit 0; fi\necho "fake node cannot run $*" >&2\nexit 1\n',
  );
  await chmod(fakeNode, 0o755);

  const fakeStatBin = join(root, 'fake-stat-bin');
  await mkdir(fakeStatBin);
  const fsTypesFile = join(root, 'fs-types.tsv');
  const fsTypes = new Map<string, string>();
  await writeFile(fsTypesFile, '');
  const fakeStat = join(fakeStatBin, 'stat');
  await writeFile(
    fakeStat,
    [
      '#!/bin/bash',
      'if [ "$#" -eq 4 ] && [ "$1" = -f ] && [ "$2" = -c ] && [ "$3" = %T ]; then',
      `  while IFS=$'\\t' read -r path type; do`,
      '    if [ "$path" = "$4" ]; then printf \'%s\\n\' "$type"; exit 0; fi',
      `  done < '${fsTypesFile}'`,
      'fi',
      `exec '${which('stat')}' "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(fakeStat, 0o755);

  let scripts = 0;
  const children: ChildProcess[] = [];
  return {
    root,
    coreBin,
    toolBin,
    nodeBin,
    fakeNodeDir,
    fakeStatBin,
    async dir(name) {
      const path = join(root, 'dirs', name);
      await mkdir(path, { recursive: true });
      return path;
    },
    async setFsType(path, type) {
      fsTypes.set(path, type);
      await writeFile(fsTypesFile, [...fsTypes].map(([p, t]) => `${p}\t${t}\n`).join(''));
    },
    async run(script, env, options = {}) {
      const path = join(root, `wrapper-${++scripts}.sh`);
      await writeFile(path, script, { mode: 0o755 });
      const child = spawn(path, [], { env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
      children.push(child);
      let stderr = '';
      const stdout: Buffer[] = [];
      child.stdout?.on('data', (c: Buffer) => stdout.push(c));
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: Buffer }>(
        (resolve, reject) => {
          child.on('error', reject);
          child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout: Buffer.concat(stdout) }));
        },
      );
      return { child, stderr: () => stderr, done };
    },
    async cleanup() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function pollFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `promise`, or a failure naming `what` after `timeoutMs`. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the test pilot's report, or undefined while it is not there. */
export async function readPilotSeen(path: string): Promise<PilotSeen | undefined> {
  if (!existsSync(path)) return undefined;
  return JSON.parse(await readFile(path, 'utf8')) as PilotSeen;
}
