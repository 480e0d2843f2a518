/**
 * The HTCondor CE against the fake HTCondor tools (tests/fakes/htcondor: a simulator of
 * condor_submit, condor_q, condor_history and condor_rm that runs each job's executable as a
 * local process). Each CE gets its own state directory, work directory and PATH:
 *
 * ```ts
 * const h = await fakeCondor({ settings: { remote: true } });
 * const { submitted } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 0) }]);
 * await h.waitForStatus(submitted[0]!.reference, ['Done']);
 * await h.close();
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { localRunner, type CommandRunner } from '../../agents/computing-elements/command-runner.js';
import { createHtcondorComputingElement } from '../../agents/computing-elements/htcondor.js';
import { resolveSecret } from '../../agents/computing-elements/secrets.js';
import type { CeQueueTarget, ComputingElement, PilotBackendStatus } from '../../agents/computing-elements/types.js';
import type { PilotState } from '../../core/pilot-states.js';

export const FAKE_CONDOR_BIN = resolve(import.meta.dirname, '../fakes/htcondor');

export const CONDOR_QUEUE: CeQueueTarget = {
  site: 'LCG.Test.org',
  ce: 'ce.test.org',
  queue: 'grid',
  processors: 1,
  ramMb: 2000,
  timeLimitSeconds: 3600,
  settings: {},
};

export interface FakeCondorOptions {
  settings?: Record<string, unknown>;
  /** More environment for the commands (WMS_FAKE_CONDOR_DOWN, WMS_FAKE_CONDOR_TOKEN, PATH...). */
  env?: Record<string, string>;
  /** How long a job stays Idle before it starts (WMS_FAKE_CONDOR_IDLE_MS), default 300 ms. */
  idleMs?: number;
  ce?: string;
}

export interface FakeCondor {
  ce: ComputingElement;
  /** The fake's state directory (WMS_FAKE_CONDOR_DIR). */
  stateDir: string;
  /** The CE's workDir. */
  workDir: string;
  /** Where test wrappers write what they saw. */
  outDir: string;
  env: Record<string, string>;
  /** Runs one fake command with the CE's environment. */
  runner: CommandRunner;
  waitForStatus(reference: string, states: PilotState[], timeoutMs?: number): Promise<PilotBackendStatus>;
  close(): Promise<void>;
}

export const newStamp = (): string => randomBytes(16).toString('hex');

/** A pilot wrapper that writes its stamp and pid to `<outDir>/<stamp>`, sleeps, and exits with `code`. */
export function exitWrapper(outDir: string, code: number, sleepSeconds = 1): string {
  return ['#!/bin/bash', `echo "$DIRAC_PILOT_STAMP $$" > "${outDir}/$DIRAC_PILOT_STAMP"`, `sleep ${sleepSeconds}`, `exit ${code}`, ''].join(
    '\n',
  );
}

export async function fakeCondor(o: FakeCondorOptions = {}): Promise<FakeCondor> {
  const root = await mkdtemp(join(tmpdir(), 'wms-condor-'));
  const stateDir = join(root, 'state');
  const workDir = join(root, 'work');
  const outDir = root;
  const env: Record<string, string> = {
    PATH: `${FAKE_CONDOR_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    WMS_FAKE_CONDOR_DIR: stateDir,
    WMS_FAKE_CONDOR_IDLE_MS: String(o.idleMs ?? 300),
    ...o.env,
  };
  const ce = createHtcondorComputingElement({
    ce: o.ce ?? 'ce.test.org',
    settings: o.settings ?? {},
    workDir,
    env,
    secret: (ref, what) => resolveSecret(ref, what, { ...process.env, ...env }),
  });
  const runner = localRunner(env);
  return {
    ce,
    stateDir,
    workDir,
    outDir,
    env,
    runner,
    async waitForStatus(reference, states, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PilotBackendStatus | undefined;
      while (Date.now() < deadline) {
        last = (await ce.status([reference])).get(reference);
        if (last && states.includes(last.status)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${reference}: not ${states.join('/')} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    },
    async close() {
      // Whatever is still queued goes (the fake's own condor_rm -all, whatever PATH the test broke).
      const admin = localRunner({ ...env, WMS_FAKE_CONDOR_DOWN: '0', WMS_FAKE_CONDOR_TOKEN: '' });
      await admin.run([process.execPath, join(FAKE_CONDOR_BIN, 'condor_rm'), '-all']).catch(() => undefined);
      await admin.close();
      await ce.close();
      await runner.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
