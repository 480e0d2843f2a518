/**
 * The report journal of one job: its status reports, kept in order on the pilot's local disk
 * and sent until each has an answer, so that a report survives the services being away (a
 * restart, a database fail-over, a network cut) for as long as the pilot lives.
 *
 * Each report gets the next report id (1, 2, 3...: the order the wrapper made them) and is
 * written as one JSON line to `<dir>/.reports-<jobId>.jsonl` BEFORE it is sent; each answer adds
 * an `ack` line. The sender sends pending entries strictly in order, one at a time: a report is
 * never overtaken by a later one. A failure on the way (cannot connect, timeout, 5xx, 429) is
 * retried with exponential back-off and full jitter (io/retry.ts `retryUntil`) until the
 * deadline (the pilot's time left); the services apply a report id once, so a report whose
 * answer was lost can be sent again safely. A 4xx other than 429 is final for that entry: it is
 * logged and handed back (a refusal of the job stops the wrapper, as before).
 *
 * States of an entry: `pending` (written, maybe on the way) -> `acked` (an answer, accepted or
 * not) | `failed` (a final refusal, the deadline passed, or the journal aborted).
 *
 * A full disk never loses or blocks a report: when the file cannot be written (ENOSPC, EDQUOT,
 * EIO...) the journal says so once in the log and goes on in memory. Once every entry is
 * answered, `close()` removes the file. The job dir is not the place for it: it is removed
 * with the job, and the payload owns it.
 */
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobStatusAnswer, JobStatusReport } from '../core/pilot-protocol.js';
import { retryUntil, type BackoffPolicy } from '../io/retry.js';

/** One line of a journal file. */
export type JournalLine =
  | { t: 'report'; id: number; report: JobStatusReport }
  | { t: 'ack'; id: number; accepted: boolean; status: string; duplicate?: boolean }
  | { t: 'failed'; id: number; error: string };

/** What became of one report. */
export type ReportResult =
  | { kind: 'acked'; answer: JobStatusAnswer }
  /** A final refusal (4xx), the deadline passed, or the journal was aborted. */
  | { kind: 'failed'; error: unknown; aborted?: boolean };

export interface ReportJournalOptions {
  /** Where the file goes: the pilot's work dir (never the job dir). */
  dir: string;
  jobId: number;
  /** Sends one report, one try (the channel's `setStatus`). */
  send(report: JobStatusReport): Promise<JobStatusAnswer>;
  /** Until when failures on the way are retried (ms since the epoch). */
  deadline: number;
  backoff?: BackoffPolicy;
  log(line: string): void;
}

interface Entry {
  id: number;
  report: JobStatusReport;
  result: Promise<ReportResult>;
  settle: (r: ReportResult) => void;
  /** Its line is on disk (or the journal is in memory): only then is it sent. */
  written: Promise<void>;
}

export class ReportJournal {
  readonly file: string;
  private nextId = 1;
  private readonly queue: Entry[] = [];
  private sending = false;
  /** Writes to the file, in order. */
  private writes: Promise<void> = Promise.resolve();
  private diskProblem: string | null = null;
  private readonly aborting = new AbortController();
  private idle: Promise<void> = Promise.resolve();
  private idleDone: (() => void) | null = null;

  constructor(private readonly o: ReportJournalOptions) {
    this.file = join(o.dir, `.reports-${o.jobId}.jsonl`);
  }

  /** Reports written and not yet answered (the one on the way included). */
  get pending(): number {
    return this.queue.length;
  }

  /** Set when the file could not be written: the journal goes on in memory. */
  get inMemoryOnly(): string | null {
    return this.diskProblem;
  }

  /**
   * Gives `report` the next report id, writes it down and queues it; the promise settles when
   * it has an answer or failed for good. Never rejects.
   */
  append(report: JobStatusReport): Promise<ReportResult> {
    const id = this.nextId++;
    const withId: JobStatusReport = { ...report, reportId: id };
    let settle!: (r: ReportResult) => void;
    const result = new Promise<ReportResult>((r) => (settle = r));
    const written = this.write({ t: 'report', id, report: withId });
    this.queue.push({ id, report: withId, result, settle, written });
    if (!this.sending) {
      this.sending = true;
      this.idle = new Promise((r) => (this.idleDone = r));
      void this.pump();
    }
    return result;
  }

  /** Resolves once nothing is pending (every report answered or failed for good). */
  drained(): Promise<void> {
    return this.sending ? this.idle : Promise.resolve();
  }

  /** Gives up on every pending report at once (the job stopped). */
  abort(): void {
    this.aborting.abort();
  }

  /** Waits for the file's writes; removes it when every report was answered or failed. */
  async close(): Promise<void> {
    await this.writes;
    if (this.queue.length === 0) await rm(this.file, { force: true }).catch(() => undefined);
  }

  private async pump(): Promise<void> {
    for (;;) {
      const entry = this.queue[0];
      if (!entry) break;
      const result = await this.sendOne(entry);
      this.queue.shift();
      await this.write(
        result.kind === 'acked'
          ? {
              t: 'ack',
              id: entry.id,
              accepted: result.answer.accepted,
              status: result.answer.status,
              ...(result.answer.duplicate ? { duplicate: true } : {}),
            }
          : { t: 'failed', id: entry.id, error: (result.error as Error)?.message ?? String(result.error) },
      );
      entry.settle(result);
    }
    this.sending = false;
    this.idleDone?.();
    this.idleDone = null;
  }

  private async sendOne(entry: Entry): Promise<ReportResult> {
    const what = `report ${entry.id} (${entry.report.status} / ${entry.report.minorStatus})`;
    await entry.written;
    if (this.aborting.signal.aborted) return { kind: 'failed', error: new Error('the job stopped'), aborted: true };
    try {
      const answer = await retryUntil(() => this.o.send(entry.report), {
        deadline: this.o.deadline,
        signal: this.aborting.signal,
        ...(this.o.backoff ? { backoff: this.o.backoff } : {}),
        onRetry: (e, attempt, waitMs) =>
          this.o.log(`${what}: ${(e as Error).message}; kept in the journal, try ${attempt + 2} in ${(waitMs / 1000).toFixed(1)} s`),
      });
      return { kind: 'acked', answer };
    } catch (e) {
      const aborted = this.aborting.signal.aborted;
      this.o.log(`${what} not delivered${aborted ? ' (the job stopped)' : ''}: ${(e as Error).message}`);
      return { kind: 'failed', error: e, ...(aborted ? { aborted: true } : {}) };
    }
  }

  /** Appends one line, in order; a write that fails switches the journal to memory (logged once). */
  private write(line: JournalLine): Promise<void> {
    this.writes = this.writes.then(async () => {
      if (this.diskProblem !== null) return;
      try {
        await appendFile(this.file, `${JSON.stringify(line)}\n`, { mode: 0o600 });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        this.diskProblem = err.code ?? err.message;
        this.o.log(`report journal ${this.file} cannot be written (${err.code ?? err.message}): keeping reports in memory`);
        // What was written may end in half a line: it is not read again by this pilot.
      }
    });
    return this.writes;
  }
}

/**
 * The reports of a journal file that have no answer yet, in order (what a pilot would send
 * again after a restart; tests read journals with it). A torn last line is ignored.
 */
export async function pendingReports(file: string): Promise<JobStatusReport[]> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  const reports = new Map<number, JobStatusReport>();
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let line: JournalLine;
    try {
      line = JSON.parse(raw) as JournalLine;
    } catch {
      continue;
    }
    if (line.t === 'report') reports.set(line.id, line.report);
    else reports.delete(line.id);
  }
  return [...reports.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}
