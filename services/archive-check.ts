/**
 * How much an uploaded archive would cost whoever opens it, measured in a child process so
 * that a hostile archive can pin neither the server's event loop nor its core.
 *
 * The child (`CHILD_SOURCE`: plain JavaScript run by `node -e`, as the pilot's DB12 copies are,
 * so it runs the same from the sources and from dist/) gunzips the archive, counts every
 * decompressed byte, hands tar's parser the bytes up to the end-of-archive marker and only
 * counts the rest, and prints one JSON line per entry header. It stops itself at the byte
 * budget and the deadline it is given; it runs with no environment (no secret of the server
 * reaches a process that parses hostile bytes), a small heap, and a CPU-time limit set with
 * `prlimit` (util-linux) where there is one; the parent kills it past the deadline in any case.
 *
 * The policy stays in core/ (`ExpansionBudget`, `ArchiveCheck`): the parent computes the budget
 * the child gets, checks each entry it reports and kills it at the first limit.
 *
 * What it judges: the cost of opening the archive (bytes, ratio, entries, time). Not its
 * contents: paths, links and "not a tar at all" are refused by the pilot and the CLI when
 * they unpack it, with the full rules and the destination at hand; the store keeps bytes.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { ArchiveCheck, ExpansionBudget, unpackTimeLimitMs, type ArchiveLimits } from '../core/archive-safety.js';
import { sniff } from '../io/tar-stream.js';

/**
 * The child: `node -e CHILD_SOURCE TAR_MODULE FILE LIMIT_BYTES MS_LEFT GZIP`. Output: lines of
 * `{"e":[path,type,size,linkpath]}`, then one final line `{"end":true|"limit"|"time"|"nested",
 * "expanded":N}` or `{"error":"...","expanded":N}`.
 */
const CHILD_SOURCE = String.raw`'use strict';
const { createReadStream } = require('node:fs');
const { createGunzip } = require('node:zlib');
const [tarModule, file, limitArg, msArg, gzipArg] = process.argv.slice(1);
const { Parser } = require(tarModule);
const limit = Number(limitArg);
const deadline = Date.now() + Number(msArg);
const gzip = gzipArg === '1';
let expanded = 0;
let eof = false;
let done = false;
let first = true;
const input = createReadStream(file);
const source = gzip ? input.pipe(createGunzip({ chunkSize: 65536 })) : input;
const finish = (o) => {
  if (done) return;
  done = true;
  input.destroy();
  process.stdout.write(JSON.stringify({ ...o, expanded }) + '\n', () => process.exit(0));
};
setTimeout(() => finish({ end: 'time' }), Math.max(0, deadline - Date.now()));
const parser = new Parser({
  strict: true,
  brotli: false,
  zstd: false,
  onReadEntry: (e) => {
    e.resume();
    if (!done) process.stdout.write(JSON.stringify({ e: [e.path, e.type, e.size, e.linkpath ?? null] }) + '\n');
  },
});
parser.on('eof', () => { eof = true; });
parser.on('error', (err) => finish({ error: String((err && err.message) || err) }));
parser.on('end', () => finish({ end: true }));
const fail = (err) => finish({ error: String((err && err.message) || err) });
input.on('error', fail);
source.on('error', fail);
source.on('data', (chunk) => {
  if (done) return;
  expanded += chunk.length;
  if (expanded > limit) return finish({ end: 'limit' });
  if (Date.now() >= deadline) return finish({ end: 'time' });
  if (eof) return;
  if (first && gzip && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) return finish({ end: 'nested' });
  first = false;
  if (!parser.write(chunk)) {
    source.pause();
    parser.once('drain', () => source.resume());
  }
});
source.on('end', () => { if (!done) parser.end(); });
`;

export interface ArchiveVerdict {
  /** Why the archive is refused (opening it would cost too much), or null. */
  refused: string | null;
  /**
   * What is wrong with its contents (paths, links, not a tar), for the log: the unpackers
   * refuse these; the check does not.
   */
  problems: string[];
  /** Entries seen (all, when not refused). */
  entries: number;
  /** Bytes it expanded to (all, when not refused). */
  expanded: number;
}

export interface ArchiveCheckOptions {
  /** `prlimit` to set the child's CPU-time limit with; null: none (wall clock only). */
  prlimit?: string | null;
  /** Checks running at once; more wait their turn (default: the cores). */
  concurrency?: number;
}

/** Where util-linux's prlimit is, if anywhere. */
export function findPrlimit(): string | null {
  for (const p of ['/usr/bin/prlimit', '/bin/prlimit', '/usr/local/bin/prlimit']) if (existsSync(p)) return p;
  return null;
}

/** The child's last line. */
interface ChildFinal {
  end?: true | 'limit' | 'time' | 'nested';
  error?: string;
  expanded?: number;
}

/** One line of the child's output: an entry header, or the last line. */
type ChildLine = ChildFinal & { e?: [string, string, number, string | null] };

/** CPU seconds the child may use beyond the wall-clock limit (its own start-up included). */
const CPU_MARGIN_SECONDS = 2;
/** How long the parent waits past the child's own deadline before it kills it. */
const GRACE_MS = 2000;
/** The child's heap, MiB: tar headers and 16 KiB chunks, never the archive. */
const CHILD_HEAP_MB = 64;

/**
 * Runs archive checks in child processes, a few at a time. `check(file)` answers a verdict;
 * it rejects only when no child can be started at all.
 */
export class ArchiveChecker {
  private readonly tarModule = createRequire(import.meta.url).resolve('tar');
  private readonly prlimit: string | null;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly limits: ArchiveLimits,
    opts: ArchiveCheckOptions = {},
  ) {
    this.prlimit = opts.prlimit === undefined ? findPrlimit() : opts.prlimit;
    this.concurrency = Math.max(1, opts.concurrency ?? availableParallelism());
  }

  async check(file: string): Promise<ArchiveVerdict> {
    if (this.running >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.running += 1;
    try {
      return await this.run(file);
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }

  private async run(file: string): Promise<ArchiveVerdict> {
    const { size, gzip } = await sniff(file);
    const budget = new ExpansionBudget(this.limits, size, Date.now());
    const check = new ArchiveCheck(this.limits);
    const msLeft = budget.msLeft(Date.now());
    // A backstop above the wall clock (which the child watches itself, and the parent after it):
    // it stops a child that pins a core without coming back to its event loop.
    const cpuSeconds = Math.ceil(unpackTimeLimitMs(this.limits) / 1000) + CPU_MARGIN_SECONDS;
    const node = [
      `--max-old-space-size=${CHILD_HEAP_MB}`,
      '-e',
      CHILD_SOURCE,
      this.tarModule,
      file,
      String(budget.limit),
      String(msLeft),
      gzip ? '1' : '0',
    ];
    const [cmd, args] = this.prlimit
      ? [this.prlimit, [`--cpu=${cpuSeconds}:${cpuSeconds + 1}`, '--', process.execPath, ...node]]
      : [process.execPath, node];

    return await new Promise<ArchiveVerdict>((resolve, reject) => {
      const child = spawn(cmd, args, { env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
      let settled = false;
      let final: ChildFinal | null = null;
      let refused: string | null = null;
      let killedForTime = false;
      let stderr = '';
      const killer = setTimeout(() => {
        killedForTime = true;
        child.kill('SIGKILL');
      }, msLeft + GRACE_MS);
      const settle = (v: ArchiveVerdict | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(killer);
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const refuse = (problem: string) => {
        refused ??= problem;
        child.kill('SIGKILL');
      };
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => {
        buffered += text;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (refused !== null || final !== null) continue;
          let msg: ChildLine;
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            continue;
          }
          if (msg.e) {
            const [path, type, entrySize, linkpath] = msg.e;
            const problem = check.add({ path, type, size: entrySize, ...(linkpath !== null ? { linkpath } : {}) });
            if (check.limitExceeded) refuse(problem ?? 'more entries or bytes than the limits');
          } else {
            final = msg;
          }
        }
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => {
        if (stderr.length < 2000) stderr += text;
      });
      child.on('error', (e) => settle(new Error(`cannot start the archive check: ${e.message}`)));
      child.on('close', (code, signal) => {
        const expanded = final?.expanded ?? 0;
        const verdict = (why: string | null): ArchiveVerdict => ({
          refused: why,
          problems: [...check.problems],
          entries: check.state.entries,
          expanded,
        });
        if (refused !== null) return settle(verdict(refused));
        if (killedForTime || final?.end === 'time') return settle(verdict(budget.timeUp(Infinity)));
        if (final?.end === 'limit') return settle(verdict(budget.expand(budget.limit + 1)));
        if (final?.end === 'nested') return settle(verdict('a gzip stream inside the gzip stream'));
        if (final?.error !== undefined)
          return settle({ ...verdict(null), problems: [...check.problems, `not a readable tar archive: ${final.error}`] });
        if (final?.end === true) return settle(verdict(null));
        if (signal === 'SIGXCPU' || signal === 'SIGKILL') {
          return settle(verdict(`used more than ${cpuSeconds} s of CPU time to read`));
        }
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        const detail = stderr.trim().split('\n').slice(-1)[0] ?? '';
        settle(verdict(`could not be read to the end (the check ended with ${why}${detail ? `: ${detail.slice(0, 200)}` : ''})`));
      });
    });
  }
}
