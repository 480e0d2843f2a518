/**
 * The local computing element: pilots as child processes of this machine (`bash wrapper`), in
 * their own process groups, at most `slots` at once. References are `local://<ce>/<pid>`.
 * Wrapper scripts and their stdout/stderr are kept under `workDir` until cleanup.
 *
 * What it knows lives in this process: after a restart, a reference whose process is still
 * alive is Running, one whose process is gone is Failed ("the process is gone and its exit was
 * not seen") — the pilot's own final report, when it made one, is kept by the status agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { CeQueueTarget, ComputingElement, PilotBackendStatus, PilotSubmission, SubmittedPilot } from './types.js';

interface LocalPilot {
  child: ChildProcess;
  stamp: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Stopped by `cancel()` (Aborted), not by something else (Failed). */
  cancelled: boolean;
}

export interface LocalCeOptions {
  ce: string;
  /** Where wrappers and their output go. */
  workDir: string;
  /** Pilots at once. */
  slots: number;
  /** Extra environment for the wrapper (tests inject a fake `stat` through PATH, say). */
  env?: Record<string, string>;
}

const TERM_GRACE_MS = 10_000;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class LocalComputingElement implements ComputingElement {
  readonly type = 'local';
  private readonly pilots = new Map<string, LocalPilot>();

  constructor(private readonly o: LocalCeOptions) {}

  private running(): number {
    let n = 0;
    for (const p of this.pilots.values()) if (!p.exit) n++;
    return n;
  }

  async availableSlots(): Promise<number> {
    return Math.max(0, this.o.slots - this.running());
  }

  async submit(_queue: CeQueueTarget, pilots: readonly PilotSubmission[]) {
    await mkdir(this.o.workDir, { recursive: true });
    const submitted: SubmittedPilot[] = [];
    const failed: { stamp: string; reason: string }[] = [];
    for (const p of pilots) {
      if (this.running() >= this.o.slots) {
        failed.push({ stamp: p.stamp, reason: `local CE ${this.o.ce}: all ${this.o.slots} slots busy` });
        continue;
      }
      try {
        submitted.push(await this.start(p));
      } catch (e) {
        failed.push({ stamp: p.stamp, reason: `local CE ${this.o.ce}: ${(e as Error).message}` });
      }
    }
    return { submitted, failed };
  }

  private async start(p: PilotSubmission): Promise<SubmittedPilot> {
    const script = join(this.o.workDir, `${p.stamp}.sh`);
    await writeFile(script, p.wrapper, { mode: 0o700 });
    await chmod(script, 0o700);
    const out = openSync(join(this.o.workDir, `${p.stamp}.out`), 'a');
    const err = openSync(join(this.o.workDir, `${p.stamp}.err`), 'a');
    try {
      const child = spawn('bash', [script], {
        cwd: this.o.workDir,
        detached: true,
        stdio: ['ignore', out, err],
        env: { ...process.env, ...this.o.env, DIRAC_PILOT_STAMP: p.stamp },
      });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid!));
        child.once('error', reject);
      });
      const reference = `local://${this.o.ce}/${pid}`;
      const entry: LocalPilot = { child, stamp: p.stamp, exit: null, cancelled: false };
      child.once('exit', (code, signal) => (entry.exit = { code, signal }));
      child.unref();
      this.pilots.set(reference, entry);
      return { stamp: p.stamp, reference };
    } finally {
      closeSync(out);
      closeSync(err);
    }
  }

  async status(references: readonly string[]): Promise<Map<string, PilotBackendStatus>> {
    const out = new Map<string, PilotBackendStatus>();
    for (const ref of references) {
      const known = this.pilots.get(ref);
      if (known) {
        if (!known.exit) out.set(ref, { status: 'Running', reason: `process ${known.child.pid} running` });
        else if (known.exit.code === 0) out.set(ref, { status: 'Done', reason: 'exit code 0', exitCode: 0 });
        else if (known.exit.signal) {
          const code = 128 + (constants.signals[known.exit.signal] ?? 0);
          out.set(
            ref,
            known.cancelled
              ? { status: 'Aborted', reason: `cancelled (${known.exit.signal})`, exitCode: code }
              : { status: 'Failed', reason: `killed by ${known.exit.signal}`, exitCode: code },
          );
        }
        else out.set(ref, { status: 'Failed', reason: `exit code ${known.exit.code}`, exitCode: known.exit.code ?? 1 });
        continue;
      }
      const pid = pidOf(ref, this.o.ce);
      if (pid === null) continue;
      out.set(
        ref,
        alive(pid)
          ? { status: 'Running', reason: `process ${pid} running` }
          : { status: 'Failed', reason: 'the process is gone and its exit was not seen (server restarted)' },
      );
    }
    return out;
  }

  async cancel(references: readonly string[]): Promise<void> {
    for (const r of references) {
      const known = this.pilots.get(r);
      if (known && !known.exit) known.cancelled = true;
    }
    const pids = references.map((r) => pidOf(r, this.o.ce)).filter((p): p is number => p !== null && alive(p));
    for (const pid of pids) signalGroup(pid, 'SIGTERM');
    setTimeout(() => pids.filter(alive).forEach((pid) => signalGroup(pid, 'SIGKILL')), TERM_GRACE_MS).unref();
  }

  async cleanup(references: readonly string[]): Promise<void> {
    for (const ref of references) {
      const known = this.pilots.get(ref);
      if (!known || !known.exit) continue;
      this.pilots.delete(ref);
      await Promise.all(['sh', 'out', 'err'].map((ext) => rm(join(this.o.workDir, `${known.stamp}.${ext}`), { force: true })));
    }
  }

  /** Drains the pilots (SIGTERM: running jobs finish) and waits up to `waitMs` for them. */
  async close(waitMs = TERM_GRACE_MS): Promise<void> {
    const live = [...this.pilots.values()].filter((p) => !p.exit);
    for (const p of live) signalGroup(p.child.pid!, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    while (live.some((p) => !p.exit) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const p of live) if (!p.exit) signalGroup(p.child.pid!, 'SIGKILL');
  }
}

function pidOf(reference: string, ce: string): number | null {
  const m = /^local:\/\/([^/]+)\/(\d+)$/.exec(reference);
  return m && m[1] === ce ? Number(m[2]) : null;
}
