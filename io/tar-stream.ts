/**
 * Unpacking a tar archive without trusting it, for the pilot (`pilot/sandbox.ts`: input
 * sandboxes) and the CLI (`cli/sandbox-unpack.ts`: a job's outputs). The rules are
 * `core/archive-safety.ts`; this is the tar glue, and each caller words its own errors.
 *
 * An archive is read twice. The first pass (`inspectArchive`) only lists it and checks every
 * entry (paths, links, devices, counts, sizes) and the destination for symbolic links an entry
 * would be written through; with any problem the caller extracts nothing. The second pass
 * (`extractArchive`) extracts with tar in strict mode, owners not preserved, and the same checks
 * again as tar's filter (the file could have changed in between).
 *
 * Both passes stream the same way (`streamTar`): the file is gunzipped here, not by tar, and
 * every decompressed byte is counted against an `ExpansionBudget` (ratio to the archive's size,
 * bytes, wall clock) before tar sees it. Once tar has read the end-of-archive marker nothing
 * more is handed to it (tar buffers what follows by copying, quadratic in its length: 16 MiB of
 * zero padding took 20 s, 64 MiB minutes); the rest is only counted, to the end of the stream.
 * The first limit hit, or the caller's `AbortSignal`, destroys the stream at once.
 *
 * `unpackArchive` runs both passes in order, each caller wording the failures its own way.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, Unpack, type ReadEntry } from 'tar';
import {
  ArchiveCheck,
  ArchiveError,
  entryTargets,
  ExpansionBudget,
  pathPrefixes,
  type ArchiveEntry,
  type ArchiveLimits,
} from '../core/archive-safety.js';

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
export async function sniff(archive: string): Promise<{ size: number; gzip: boolean }> {
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

/** A refusal by the budget (the archive's fault), as opposed to a read error. */
function refusal(label: string, problem: string): ArchiveError {
  return new ArchiveError(`unsafe archive ${label}: ${problem}`, [problem]);
}

function interruption(label: string, signal: AbortSignal): ArchiveError {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted';
  return new ArchiveError(`${label}: unpacking interrupted (${why})`, []);
}

export interface StreamOptions {
  /** Names the archive in messages. */
  label: string;
  /** This pass's budget (`budget.nextPass()` for the second one). */
  budget: ExpansionBudget;
  /** Whether the archive is gzip (`sniff`). */
  gzip: boolean;
  signal: AbortSignal | undefined;
  /** After a failure, let tar finish the files it has open (an Unpack) before returning. */
  windDown?: boolean;
}

/**
 * Streams the tar bytes of `archive` into `parser` (see the module comment) and waits for the
 * parser to end (for an Unpack: every file written). Rejects with an ArchiveError on a limit,
 * the deadline or `signal`; with the reader's or tar's own error otherwise. After a failure it
 * ends the parser and waits (briefly) for the files it has open, so that nothing is written
 * once it has returned.
 */
export async function streamTar(archive: string, parser: Parser, o: StreamOptions): Promise<void> {
  const { budget, label } = o;
  const stopper = new AbortController();
  const stop = (e: ArchiveError) => {
    if (!stopper.signal.aborted) stopper.abort(e);
  };
  const onAbort = () => stop(interruption(label, o.signal as AbortSignal));
  if (o.signal?.aborted) throw interruption(label, o.signal);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timeUp = () => stop(refusal(label, budget.timeUp(Infinity) as string));
  const timer = setTimeout(timeUp, budget.msLeft(Date.now()));

  let eof = false;
  let ended = false;
  let parserError: Error | null = null;
  parser.on('eof', () => (eof = true));
  parser.on('error', (e: Error) => (parserError ??= e));
  const parserEnded = new Promise<void>((done) => parser.once('end', () => ((ended = true), done())));

  /** What the consumer threw (Node 20's pipeline reports the source's AbortError instead). */
  let thrown: unknown = null;
  const consume = async (source: AsyncIterable<Buffer>) => {
    try {
      await feed(source);
    } catch (e) {
      thrown ??= e;
      throw e;
    }
  };
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
      // Stop tar where it is: what it has been given is finished (a truncated file at worst),
      // nothing more comes; wait for the files it has open.
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

/**
 * The first pass: lists `archive` and checks every entry; stops reading at the first limit on
 * entries exceeded (the check says which). Also checks, in `dest` when it exists, that no
 * entry would be written through a symbolic link already there. Throws an ArchiveError when
 * the archive expands beyond the budget, the time is up or `o.signal` aborts; a read error as
 * it comes.
 */
export async function inspectArchive(archive: string, dest: string, limits: ArchiveLimits, o: StreamOptions): Promise<ArchiveCheck> {
  const check = new ArchiveCheck(limits);
  /** Directories entries are written into, with the first entry that needs each. */
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
    // Stopped at a limit on entries: the check says which.
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

export interface Extracted {
  /** Entries extracted. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
  /** The first problem found with an entry in this pass (the archive changed since it was inspected), else null. */
  changed: string | null;
}

/**
 * The second pass: extracts `archive` into `dest` (which must exist) with tar in strict mode,
 * owners not preserved, every entry checked again in tar's filter (one that fails is not
 * written, and `changed` names the first). Pass this pass's budget (`budget.nextPass()`).
 * Rejects as `streamTar` does, once tar has closed the files it had open; what was extracted
 * so far stays in `dest`.
 */
export async function extractArchive(archive: string, dest: string, limits: ArchiveLimits, o: StreamOptions): Promise<Extracted> {
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
  await streamTar(archive, unpack, { ...o, windDown: true });
  return { entries: again.state.entries, bytes: again.state.bytes, changed };
}

/** Where `unpackArchive` stopped, for the caller to word its error. */
export type UnpackFailure =
  /** The first pass failed: not a readable tar archive, or an `ArchiveError` (a budget limit, the signal). */
  | { stage: 'read'; error: unknown }
  /** The first pass found problems (`check.problems`): nothing was written. */
  | { stage: 'unsafe'; check: ArchiveCheck }
  /** The destination could not be created. */
  | { stage: 'mkdir'; error: unknown }
  /** The second pass failed, as `extractArchive` rejects: what was extracted so far stays. */
  | { stage: 'extract'; error: unknown }
  /** An entry failed its check in the second pass (the archive changed since the first). */
  | { stage: 'changed'; problem: string };

/**
 * Both passes in order: sniffs `archive`, inspects it against one `ExpansionBudget` for
 * `limits`, creates `dest` and extracts with the budget's next pass. Any failure is thrown as
 * `fail` words it (the caller's error class, see `UnpackFailure`); nothing is written unless
 * the first pass found no problem.
 */
export async function unpackArchive(
  archive: string,
  dest: string,
  limits: ArchiveLimits,
  o: { label: string; signal?: AbortSignal | undefined },
  fail: (f: UnpackFailure) => Error,
): Promise<{ entries: number; bytes: number }> {
  let stream: StreamOptions;
  let check: ArchiveCheck;
  try {
    const { size, gzip } = await sniff(archive);
    stream = { label: o.label, gzip, budget: new ExpansionBudget(limits, size, Date.now()), signal: o.signal };
    check = await inspectArchive(archive, dest, limits, stream);
  } catch (error) {
    throw fail({ stage: 'read', error });
  }
  if (check.count > 0) throw fail({ stage: 'unsafe', check });
  try {
    await mkdir(dest, { recursive: true });
  } catch (error) {
    throw fail({ stage: 'mkdir', error });
  }
  let done: Extracted;
  try {
    done = await extractArchive(archive, dest, limits, { ...stream, budget: stream.budget.nextPass() });
  } catch (error) {
    throw fail({ stage: 'extract', error });
  }
  if (done.changed !== null) throw fail({ stage: 'changed', problem: done.changed });
  return { entries: done.entries, bytes: done.bytes };
}
