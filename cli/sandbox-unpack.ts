/**
 * Unpacks a downloaded sandbox (a job's outputs for `wms job output ID --dir D`) without
 * trusting it: the same rules as the pilot (`core/archive-safety.ts`), the same two passes.
 * First list the archive and check every entry (and the destination for symbolic links an
 * entry would be written through); with any problem extract nothing. Then extract with tar in
 * strict mode, owners not preserved, re-checking each entry in tar's filter.
 *
 * Both passes stream the archive through an `ExpansionBudget`: gunzipped here, not by tar,
 * every decompressed byte counted (ratio to the archive's size, bytes, wall clock), nothing
 * handed to tar after its end-of-archive marker (tar buffers what follows by copying, which is
 * quadratic: 64 MiB of zero padding took minutes), the first limit stopping the stream at once.
 * A payload wrote these outputs: an archive that expands beyond 200 times its size, or takes
 * longer than 60 s, is refused rather than pinning the user's terminal.
 *
 * The tar glue here is the pilot's (`pilot/sandbox.ts`) line for line: the CLI may not import
 * the pilot, and core/ does no I/O.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, Unpack, type ReadEntry } from 'tar';
import {
  ArchiveCheck,
  ArchiveError,
  DEFAULT_UNPACK_LIMITS,
  entryTargets,
  ExpansionBudget,
  isArchiveError,
  pathPrefixes,
  type ArchiveEntry,
  type ArchiveLimits,
} from '../core/archive-safety.js';
import { CliError } from './errors.js';

export interface UnpackedSandbox {
  /** Entries extracted. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

function asEntry(e: ReadEntry): ArchiveEntry {
  const entry: ArchiveEntry = { path: e.path, type: e.type, size: e.size };
  if (e.linkpath !== undefined) entry.linkpath = e.linkpath;
  return entry;
}

/** Tar options that keep tar from decompressing anything itself (the stream does it, counted). */
const PLAIN_TAR = { strict: true, brotli: false, zstd: false } as const;

/** Gunzip's output chunk: 4 times zlib's default, a quarter of the work per byte in JS. */
const GUNZIP_CHUNK = 64 * 1024;

/** How long a stopped extraction may take to finish the files it has open. */
const WIND_DOWN_MS = 1000;

/** The archive's size and whether it is gzip (by its magic bytes). */
async function sniff(archive: string): Promise<{ size: number; gzip: boolean }> {
  const fh = await open(archive, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return { size, gzip: bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b };
  } finally {
    await fh.close();
  }
}

function refusal(label: string, problem: string): ArchiveError {
  return new ArchiveError(`unsafe archive ${label}: ${problem}`, [problem]);
}

function interruption(label: string, signal: AbortSignal): ArchiveError {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted';
  return new ArchiveError(`${label}: unpacking interrupted (${why})`, []);
}

interface StreamOptions {
  label: string;
  budget: ExpansionBudget;
  gzip: boolean;
  signal: AbortSignal | undefined;
  /** After a failure, let tar finish the files it has open (an Unpack) before returning. */
  windDown?: boolean;
}

/**
 * Streams the tar bytes of `archive` into `parser` through the budget and waits for the
 * parser to end (for an Unpack: every file written). Rejects with an ArchiveError on a limit,
 * the deadline or `signal`; with the reader's or tar's own error otherwise.
 */
async function streamTar(archive: string, parser: Parser, o: StreamOptions): Promise<void> {
  const { budget, label } = o;
  const stopper = new AbortController();
  const stop = (e: ArchiveError) => {
    if (!stopper.signal.aborted) stopper.abort(e);
  };
  const onAbort = () => stop(interruption(label, o.signal as AbortSignal));
  if (o.signal?.aborted) throw interruption(label, o.signal);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stop(refusal(label, budget.timeUp(Infinity) as string)), budget.msLeft(Date.now()));

  let eof = false;
  let ended = false;
  let parserError: Error | null = null;
  parser.on('eof', () => (eof = true));
  parser.on('error', (e: Error) => (parserError ??= e));
  const parserEnded = new Promise<void>((done) => parser.once('end', () => ((ended = true), done())));

  /** What the consumer threw (Node 20's pipeline reports the source's AbortError instead). */
  let thrown: unknown = null;
  const feed = async (source: AsyncIterable<Buffer>) => {
    let first = true;
    for await (const chunk of source) {
      const problem = budget.expand(chunk.length) ?? budget.timeUp(Date.now());
      if (problem !== null) throw refusal(label, problem);
      if (parserError) throw parserError;
      if (eof || ended) continue; // counted, never buffered by tar
      if (first && o.gzip && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
        throw refusal(label, 'a gzip stream inside the gzip stream');
      }
      first = false;
      if (!parser.write(chunk) && !eof && !parserError) {
        await once(parser, 'drain', { signal: stopper.signal });
      }
    }
  };
  const consume = async (source: AsyncIterable<Buffer>) => {
    try {
      await feed(source);
    } catch (e) {
      thrown ??= e;
      throw e;
    }
  };
  const input = createReadStream(archive);
  try {
    if (o.gzip) await pipeline(input, createGunzip({ chunkSize: GUNZIP_CHUNK }), consume, { signal: stopper.signal });
    else await pipeline(input, consume, { signal: stopper.signal });
    if (parserError) throw parserError;
    parser.end();
    await Promise.race([parserEnded, once(stopper.signal, 'abort')]);
    if (stopper.signal.aborted) throw stopper.signal.reason;
    if (parserError) throw parserError;
  } catch (e) {
    const reason: unknown = stopper.signal.aborted ? stopper.signal.reason : (thrown ?? e);
    input.destroy();
    if (!ended && o.windDown) {
      try {
        parser.end();
      } catch {
        // already ended
      }
      let windDown: NodeJS.Timeout | undefined;
      await Promise.race([parserEnded, new Promise((r) => (windDown = setTimeout(r, WIND_DOWN_MS)))]);
      clearTimeout(windDown);
    }
    throw reason;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** Lists and checks `archive` for unpacking into `dest`; throws when it cannot be read or a budget limit is hit. */
async function inspect(archive: string, dest: string, limits: ArchiveLimits, o: StreamOptions): Promise<ArchiveCheck> {
  const check = new ArchiveCheck(limits);
  const parents = new Map<string, string>();
  const limitHit = new AbortController();
  const parser = new Parser({
    ...PLAIN_TAR,
    onReadEntry: (e: ReadEntry) => {
      e.resume();
      if (limitHit.signal.aborted) return;
      const entry = asEntry(e);
      if (check.add(entry) === null) {
        for (const target of entryTargets(entry)) {
          for (const p of pathPrefixes(target)) if (!parents.has(p)) parents.set(p, e.path);
        }
      }
      if (check.limitExceeded) limitHit.abort();
    },
  });
  const signal = o.signal ? AbortSignal.any([o.signal, limitHit.signal]) : limitHit.signal;
  try {
    await streamTar(archive, parser, { ...o, signal });
  } catch (e) {
    if (!limitHit.signal.aborted || o.signal?.aborted) throw e;
  }
  if (!check.limitExceeded) {
    for (const [prefix, path] of parents) {
      const st = await lstat(join(dest, prefix)).catch(() => null);
      if (st?.isSymbolicLink()) {
        check.record(`path goes through the symbolic link ${prefix} already in the destination: ${path}`);
      }
    }
  }
  return check;
}

/** An error out of the stream as a CliError naming the archive. */
function cliError(e: unknown, what: string): CliError {
  if (isArchiveError(e)) return new CliError(e.message);
  return new CliError(`${what}: ${(e as Error).message}`);
}

/**
 * Unpacks `archive` into `dest` (created if needed) when every entry is safe. Otherwise throws
 * a CliError naming the archive, with one problem line each (the first ten), and writes
 * nothing. `label` names the archive in messages (default: its file name). An archive that
 * expands beyond its budget or takes too long is refused the same way, in either pass (in the
 * second, what was written so far stays: the message says so). `signal` stops it where it is.
 */
export async function unpackSandbox(
  archive: string,
  dest: string,
  opts: { limits?: ArchiveLimits; label?: string; signal?: AbortSignal } = {},
): Promise<UnpackedSandbox> {
  const limits = opts.limits ?? DEFAULT_UNPACK_LIMITS;
  const label = opts.label ?? basename(archive);
  let check: ArchiveCheck;
  let stream: StreamOptions;
  try {
    const { size, gzip } = await sniff(archive);
    stream = { label, gzip, budget: new ExpansionBudget(limits, size, Date.now()), signal: opts.signal };
    check = await inspect(archive, dest, limits, stream);
  } catch (e) {
    throw cliError(e, `${label} is not a readable tar archive`);
  }
  if (check.count > 0) {
    const problems = check.problems.map((message) => ({ message }));
    const more = check.count - check.problems.length;
    if (more > 0) problems.push({ message: `and ${more} more problem${more === 1 ? '' : 's'}` });
    if (check.limitExceeded) problems.push({ message: 'reading stopped at the limit' });
    throw new CliError(`${label}: unsafe archive, nothing unpacked into ${dest}`, problems);
  }

  try {
    await mkdir(dest, { recursive: true });
  } catch (e) {
    throw new CliError(`${dest}: cannot create the directory (${(e as Error).message})`);
  }
  const again = new ArchiveCheck(limits);
  let changed: string | null = null;
  const unpack = new Unpack({
    ...PLAIN_TAR,
    cwd: dest,
    preserveOwner: false,
    filter: (_path, e) => {
      const p = again.add(asEntry(e as ReadEntry));
      if (p !== null) changed ??= p;
      return p === null;
    },
  });
  try {
    await streamTar(archive, unpack, { ...stream, budget: stream.budget.nextPass(), windDown: true });
  } catch (e) {
    if (isArchiveError(e)) throw new CliError(`${e.message}; what was unpacked before it stopped is in ${dest}`);
    throw cliError(e, `${label} could not be unpacked into ${dest}`);
  }
  if (changed !== null) throw new CliError(`${label} changed while it was unpacked: ${changed as string}`);
  return { entries: again.state.entries, bytes: again.state.bytes };
}
