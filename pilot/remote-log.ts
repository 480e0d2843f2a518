/**
 * The pilot's log: every line goes to stderr (the batch system keeps it) and, in batches, to
 * the server (`wms pilot logs REF` shows it): sent when `batchLines` lines wait, every
 * `flushSeconds`, and at the end. A failed send keeps the lines for the next one (up to a cap,
 * then the oldest are dropped and the drop is said in the log): logging never stops the pilot.
 * Flushes never pile up: one runs, at most one more waits, and every caller in the meantime
 * shares the waiting one (a server that is down for an hour costs one send attempt per
 * flush interval, and the pilot is not kept alive by a backlog of attempts when it ends).
 */
import type { LogBatch } from '../core/pilot-protocol.js';

const MAX_PENDING = 50_000;

export class RemoteLog {
  private pending: LogBatch['lines'] = [];
  private sender: ((batch: LogBatch) => Promise<unknown>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** The flush that waits for the running one, shared by everyone who asks meanwhile. */
  private queued: Promise<void> | null = null;
  private dropped = 0;
  private batchLines = 200;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly echo: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {}

  /** Starts sending (lines logged before are kept and go first). */
  connect(send: (batch: LogBatch) => Promise<unknown>, opts: { batchLines: number; flushSeconds: number }): void {
    this.sender = send;
    this.batchLines = opts.batchLines;
    this.timer = setInterval(() => void this.flush(), opts.flushSeconds * 1000);
    this.timer.unref();
    void this.flush();
  }

  log(message: string, at = this.now()): void {
    const line = `${new Date(at).toISOString()} ${message}`;
    this.echo(line);
    this.pending.push({ at, line });
    if (this.pending.length > MAX_PENDING) {
      this.dropped += this.pending.length - MAX_PENDING;
      this.pending.splice(0, this.pending.length - MAX_PENDING);
    }
    if (this.sender && this.pending.length >= this.batchLines) void this.flush();
  }

  /** Sends what waits; resolves when sent (or failed, the lines kept). */
  flush(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.flushing.then(() => {
      this.queued = null;
      return this.send();
    });
    this.queued = next;
    this.flushing = next;
    return next;
  }

  private async send(): Promise<void> {
    while (this.sender && this.pending.length > 0) {
      if (this.dropped > 0) {
        this.pending.unshift({ at: this.now(), line: `(${this.dropped} log lines dropped while the server was unreachable)` });
        this.dropped = 0;
      }
      const batch = this.pending.slice(0, 5000);
      try {
        await this.sender({ lines: batch });
      } catch (e) {
        this.echo(`remote log: ${(e as Error).message}`);
        return;
      }
      this.pending.splice(0, batch.length);
    }
  }

  /** Final flush and stop. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
