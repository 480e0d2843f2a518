/**
 * Group commit: writes that arrive while others are in flight wait and go together. An item is
 * written at once while fewer than `parallel` writes are in flight; otherwise it waits, and each
 * write that ends takes the waiting items (up to `maxBatch`, at most one per `key`) into one
 * `many` call. No timer: alone, an item is written as soon as it comes; under load the batches
 * grow with it. Each caller is answered with its own item's result.
 *
 * The heartbeats (services/logic/job-reports.ts) and the matcher's claims (db/ops/claim-batches.ts)
 * use it; the database writes are theirs.
 */

export interface GroupCommitOptions<I, R> {
  /** Writes in flight at once. */
  parallel: number;
  /** Items in one batch at most. */
  maxBatch: number;
  /** Items of one key never share a batch (a later one waits for the next). */
  key?: (item: I) => unknown;
  /** The order of the items within a batch (say, to take row locks in one order everywhere). */
  order?: (a: I, b: I) => number;
  /** Writes one item. */
  one(item: I): Promise<R>;
  /** Writes several, all or nothing; one result per item, in their order. */
  many(items: I[]): Promise<R[]>;
  /** After `many` failed with `error` (nothing written): true writes each item alone, false fails them all. */
  retryAlone(error: unknown): boolean;
}

interface Pending<I, R> {
  item: I;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export class GroupCommit<I, R> {
  private readonly waiting: Pending<I, R>[] = [];
  private inFlight = 0;

  constructor(private readonly o: GroupCommitOptions<I, R>) {}

  write(item: I): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.o.parallel && this.waiting.length > 0) {
      const batch = this.take();
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The next batch: waiting items in order, at most one per key. */
  private take(): Pending<I, R>[] {
    const { key, order, maxBatch } = this.o;
    let batch: Pending<I, R>[];
    if (!key) batch = this.waiting.splice(0, maxBatch);
    else {
      const keys = new Set<unknown>();
      batch = [];
      for (let i = 0; i < this.waiting.length && batch.length < maxBatch;) {
        const p = this.waiting[i]!;
        const k = key(p.item);
        if (keys.has(k)) {
          i++;
          continue;
        }
        keys.add(k);
        batch.push(p);
        this.waiting.splice(i, 1);
      }
    }
    if (order) batch.sort((a, b) => order(a.item, b.item));
    return batch;
  }

  private async send(batch: Pending<I, R>[]): Promise<void> {
    if (batch.length === 1) return settle(batch[0]!, () => this.o.one(batch[0]!.item));
    let results: R[];
    try {
      results = await this.o.many(batch.map((p) => p.item));
    } catch (e) {
      if (!this.o.retryAlone(e)) {
        for (const p of batch) p.reject(e);
        return;
      }
      for (const p of batch) await settle(p, () => this.o.one(p.item));
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }
}

async function settle<I, R>(p: Pending<I, R>, write: () => Promise<R>): Promise<void> {
  try {
    p.resolve(await write());
  } catch (e) {
    p.reject(e);
  }
}
