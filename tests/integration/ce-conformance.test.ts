/**
 * One conformance suite for every computing-element driver: the same checks, written once, run
 * against each row of SETUPS (the local CE; SLURM on the real cluster of scripts/slurm-env.sh;
 * HTCondor on the fake tools first on PATH through DriverOptions.env; OpenNebula on the XML-RPC
 * simulator). Each row gives a healthy driver and a queue, and, where the CE type has them, a
 * driver with bad credentials and one whose endpoint is unreachable; where it has not, the row
 * says why and the case is listed as skipped with that reason.
 *
 * The checks:
 *   1. two pilots (exit 0 and exit 3) are submitted, reach a final state (exit codes where the
 *      backend can tell them), and each wrapper saw its own DIRAC_PILOT_STAMP;
 *   2. a running pilot is cancelled: final state, its processes gone, a second cancel harmless;
 *   3. cleanup of finished references succeeds, twice;
 *   4. bad credentials: nothing submitted, every stamp failed with a one-line reason naming the
 *      problem, status rejects;
 *   5. unreachable endpoint: every stamp accounted for once, clear reasons, status and cancel reject.
 *
 * SLURM rows follow describeSlurm / describeSsh: under CI they fail without the cluster or sshd,
 * elsewhere they skip loudly.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunner } from '../../agents/computing-elements/command-runner.js';
import { createHtcondorComputingElement } from '../../agents/computing-elements/htcondor.js';
import { LocalComputingElement } from '../../agents/computing-elements/local.js';
import { createOpenNebulaComputingElement } from '../../agents/computing-elements/opennebula.js';
import { resolveSecret } from '../../agents/computing-elements/secrets.js';
import { createSlurmComputingElement } from '../../agents/computing-elements/slurm.js';
import type { CeQueueTarget, ComputingElement, PilotBackendStatus } from '../../agents/computing-elements/types.js';
import { PILOT_FINAL_STATES, type PilotState } from '../../core/pilot-states.js';
import { OneSimulator } from '../fakes/opennebula/simulator.js';
import { FAKE_CONDOR_BIN } from '../helpers/htcondor.js';
import { defaultPartition, describeSlurm, describeSsh, sparePort, startSshd, type TestSshd } from '../helpers/slurm.js';

// ---------------------------------------------------------------------------------------------
// The table

/** A driver built for one case, and what to stop once the case is over. */
interface Harness {
  ce: ComputingElement;
  close(): Promise<void>;
}

/** `describe`, or a gate that fails under CI / skips loudly without the real part. */
type Gate = (name: string, fn: () => void) => void;
const always: Gate = (name, fn) => describe(name, fn);

interface Outcome {
  status: PilotState;
  reason: RegExp;
  /** undefined: the backend gives no exit code. */
  exitCode: number | undefined;
}

interface FailureCase {
  gate: Gate;
  make(root: string): Promise<Harness>;
  /** What every failed stamp's reason must say. */
  reason: RegExp;
  /** What status() and cancel() reject with. */
  statusError: RegExp;
  cancelError?: RegExp;
}

type Case = FailureCase | { notApplicable: string };

interface CeSetup {
  name: string;
  gate: Gate;
  /** How long a pilot may take to reach a state (SLURM may queue behind other jobs). */
  deadlineMs: number;
  queue(): CeQueueTarget;
  /** A reference of this CE's form, for status/cancel on a broken endpoint. */
  sampleRef: string;
  reference: RegExp;
  start?(root: string): Promise<void>;
  stop?(): Promise<void>;
  healthy(root: string): Promise<Harness>;
  /** Whether the backend can tell exit codes; the reason when it cannot. */
  exitCodes: true | string;
  exit0: Outcome;
  exit3: Outcome;
  /** What a cancelled pilot becomes (as the driver documents it). */
  cancelled: { status: PilotState; reason: RegExp };
  badCredentials: Case;
  unreachable: Case;
}

const secret = (ref: unknown, what: string) => resolveSecret(ref, what);

// --- local --------------------------------------------------------------------------------

const local: CeSetup = {
  name: 'local',
  gate: always,
  deadlineMs: 15_000,
  queue: () => ({
    site: 'DIRAC.Local.org',
    ce: 'local-conf',
    queue: 'local',
    processors: 1,
    ramMb: 100,
    timeLimitSeconds: 300,
    settings: {},
  }),
  sampleRef: 'local://local-conf/1',
  reference: /^local:\/\/local-conf\/\d+$/,
  async healthy(root) {
    const ce = new LocalComputingElement({ ce: 'local-conf', workDir: join(root, 'local-work'), slots: 4 });
    return { ce, close: () => ce.close(2000) };
  },
  exitCodes: true,
  exit0: { status: 'Done', reason: /^exit code 0$/, exitCode: 0 },
  exit3: { status: 'Failed', reason: /^exit code 3$/, exitCode: 3 },
  // local.ts: a pilot it cancelled is Aborted; one killed by anyone else is Failed "killed by SIGx".
  cancelled: { status: 'Aborted', reason: /^cancelled \(SIGTERM\)$/ },
  badCredentials: { notApplicable: 'the local CE has no credentials: pilots are child processes of this process' },
  unreachable: { notApplicable: 'the local CE has no endpoint: it runs on this machine' },
};

// --- SLURM --------------------------------------------------------------------------------

const SLURM_CE = 'slurm-conf';
const slurm: CeSetup = {
  name: 'slurm',
  gate: describeSlurm,
  deadlineMs: 90_000,
  queue: () => ({
    site: 'Test.Site',
    ce: SLURM_CE,
    queue: defaultPartition(),
    processors: 1,
    ramMb: 100,
    timeLimitSeconds: 300,
    settings: {},
  }),
  sampleRef: `slurm://${SLURM_CE}/1`,
  reference: new RegExp(`^slurm://${SLURM_CE}/\\d+$`),
  async healthy(root) {
    const ce = createSlurmComputingElement({ ce: SLURM_CE, settings: {}, workDir: join(root, 'slurm-work'), secret });
    return { ce, close: () => ce.close() };
  },
  exitCodes: true,
  exit0: { status: 'Done', reason: /^exit code 0$/, exitCode: 0 },
  exit3: { status: 'Failed', reason: /^exit code 3$/, exitCode: 3 },
  cancelled: { status: 'Aborted', reason: /CANCELLED/ },
  badCredentials: {
    gate: describeSsh,
    async make(root) {
      const sshd: TestSshd = await startSshd();
      const ce = createSlurmComputingElement({
        ce: SLURM_CE,
        settings: {
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          privateKey: { file: sshd.wrongKeyFile },
          knownHostKey: sshd.hostKey,
        },
        workDir: join(root, 'slurm-badkey'),
        secret,
      });
      return {
        ce,
        async close() {
          await ce.close();
          await sshd.stop();
        },
      };
    },
    reason: /authentication failed/,
    statusError: /^SLURM CE slurm-conf: status: cannot log in to \S+@127\.0\.0\.1:\d+: authentication failed/,
    cancelError: /^SLURM CE slurm-conf: cancel: .*authentication failed/,
  },
  unreachable: {
    gate: describeSlurm,
    async make(root) {
      const port = await sparePort(); // nothing listens there
      const ce = createSlurmComputingElement({
        ce: SLURM_CE,
        settings: { host: '127.0.0.1', port, user: 'root', password: { env: 'WMS_CONFORMANCE_PW' } },
        workDir: join(root, 'slurm-closed'),
        secret: async () => 'not-used-nothing-listens',
      });
      return { ce, close: () => ce.close() };
    },
    reason: /^SLURM CE slurm-conf: cannot connect to 127\.0\.0\.1:\d+: connection refused$/,
    statusError: /^SLURM CE slurm-conf: status: cannot connect to 127\.0\.0\.1:\d+: connection refused/,
    cancelError: /^SLURM CE slurm-conf: cancel: .*connection refused/,
  },
};

// --- HTCondor (fake tools) ------------------------------------------------------------------

const CONDOR_CE = 'ce.conf.org';
async function condorHarness(
  root: string,
  name: string,
  settings: Record<string, unknown>,
  extraEnv: Record<string, string>,
): Promise<Harness> {
  const env: Record<string, string> = {
    PATH: `${FAKE_CONDOR_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    WMS_FAKE_CONDOR_DIR: join(root, `${name}-state`),
    WMS_FAKE_CONDOR_IDLE_MS: '300',
    ...extraEnv,
  };
  const ce = createHtcondorComputingElement({
    ce: CONDOR_CE,
    settings,
    workDir: join(root, `${name}-work`),
    env,
    secret: (ref, what) => resolveSecret(ref, what, { ...process.env, ...env }),
  });
  return {
    ce,
    async close() {
      // Whatever is still queued goes, with the fake's own condor_rm -all.
      const admin = localRunner({ ...env, WMS_FAKE_CONDOR_DOWN: '0', WMS_FAKE_CONDOR_TOKEN: '' });
      await admin.run([process.execPath, join(FAKE_CONDOR_BIN, 'condor_rm'), '-all']).catch(() => undefined);
      await admin.close();
      await ce.close();
    },
  };
}

const htcondor: CeSetup = {
  name: 'htcondor',
  gate: always,
  deadlineMs: 20_000,
  queue: () => ({ site: 'LCG.Conf.org', ce: CONDOR_CE, queue: 'grid', processors: 1, ramMb: 2000, timeLimitSeconds: 3600, settings: {} }),
  sampleRef: `htcondorce://${CONDOR_CE}/1.0`,
  reference: /^htcondorce:\/\/ce\.conf\.org\/\d+\.\d+$/,
  healthy: (root) => condorHarness(root, 'condor', {}, {}),
  exitCodes: true,
  exit0: { status: 'Done', reason: /^exit code 0$/, exitCode: 0 },
  exit3: { status: 'Failed', reason: /^exit code 3$/, exitCode: 3 },
  cancelled: { status: 'Aborted', reason: /^removed: via condor_rm/ },
  badCredentials: {
    gate: always,
    make: (root) =>
      condorHarness(
        root,
        'condor-badtoken',
        { token: { env: 'WMS_CONFORMANCE_CONDOR_TOKEN' } },
        { WMS_CONFORMANCE_CONDOR_TOKEN: 'tok-wrong', WMS_FAKE_CONDOR_TOKEN: 'tok-right' },
      ),
    reason: /AUTHENTICATE:1003:Failed to authenticate/,
    statusError: /^HTCondor CE ce\.conf\.org: condor_q failed \(exit 1\): .*AUTHENTICATE:1003/,
    cancelError: /^HTCondor CE ce\.conf\.org: condor_rm failed \(exit 1\): .*AUTHENTICATE:1003/,
  },
  unreachable: {
    gate: always,
    make: (root) => condorHarness(root, 'condor-down', {}, { WMS_FAKE_CONDOR_DOWN: '1' }),
    reason: /^HTCondor CE ce\.conf\.org: condor_submit failed \(exit 1\): ERROR: Failed to connect to local queue manager/,
    statusError: /^HTCondor CE ce\.conf\.org: condor_q failed \(exit 1\): .*Failed to connect/,
    cancelError: /^HTCondor CE ce\.conf\.org: condor_rm failed \(exit 1\): .*Failed to connect/,
  },
};

// --- OpenNebula (simulator) -------------------------------------------------------------------

const ONE_CE = 'one-conf';
const ONE_PASSWORD = 'conf-s3cret';
const ONE_TEMPLATE = 7;
let sim: OneSimulator | null = null;

function oneHarness(root: string, endpoint: string, password: string): Harness {
  const ce = createOpenNebulaComputingElement({
    ce: ONE_CE,
    settings: { endpoint, user: 'dirac', password: { env: 'ONE_PASSWORD' }, templateId: ONE_TEMPLATE, timeoutSeconds: 5 },
    workDir: join(root, 'one-work'),
    secret: async () => password,
  });
  return { ce, close: () => ce.close() };
}

const opennebula: CeSetup = {
  name: 'opennebula',
  gate: always,
  deadlineMs: 20_000,
  queue: () => ({ site: 'CLOUD.Conf.org', ce: ONE_CE, queue: 'default', processors: 1, ramMb: 2048, timeLimitSeconds: 3600, settings: {} }),
  sampleRef: `cloud://${ONE_CE}/0`,
  reference: /^cloud:\/\/one-conf\/\d+$/,
  async start(root) {
    sim = new OneSimulator({
      workDir: join(root, 'one-sim'),
      user: 'dirac',
      password: ONE_PASSWORD,
      templates: { [ONE_TEMPLATE]: 'CPU = "1"\nMEMORY = "512"\n' },
    });
    await sim.start();
  },
  async stop() {
    await sim?.close();
    sim = null;
  },
  healthy: async (root) => oneHarness(root, sim!.url, ONE_PASSWORD),
  exitCodes:
    'no: a VM has no exit code; the pilot ends, the guest powers off (powerOffAtEnd), and status() reports POWEROFF as Done and terminates the VM, whatever the wrapper returned',
  exit0: { status: 'Done', reason: /^VM POWEROFF: the guest powered itself off at the pilot's end; VM terminated$/, exitCode: undefined },
  exit3: { status: 'Done', reason: /^VM POWEROFF: the guest powered itself off at the pilot's end; VM terminated$/, exitCode: undefined },
  cancelled: { status: 'Deleted', reason: /^VM DONE: terminated$/ },
  badCredentials: {
    gate: always,
    make: async (root) => oneHarness(root, sim!.url, 'not-the-password'),
    reason: /\[AUTHENTICATION\] .*User couldn't be authenticated/,
    statusError: /one\.vmpool\.info at http:\/\/127\.0\.0\.1:\d+\/RPC2: \[AUTHENTICATION\]/,
    cancelError: /^OpenNebula CE one-conf: cancel failed for 1 VM\(s\): .*\[AUTHENTICATION\]/,
  },
  unreachable: {
    gate: always,
    make: async (root) => oneHarness(root, `http://127.0.0.1:${await sparePort()}/RPC2`, ONE_PASSWORD),
    reason: /one\.template\.instantiate at http:\/\/127\.0\.0\.1:\d+\/RPC2: cannot reach the endpoint \(.*ECONNREFUSED/,
    statusError: /one\.vmpool\.info at http:\/\/127\.0\.0\.1:\d+\/RPC2: cannot reach the endpoint/,
    cancelError: /^OpenNebula CE one-conf: cancel failed for 1 VM\(s\): .*cannot reach the endpoint/,
  },
};

const SETUPS: CeSetup[] = [local, slurm, htcondor, opennebula];

// ---------------------------------------------------------------------------------------------
// Helpers

const newStamp = (): string => randomBytes(16).toString('hex');

/**
 * A wrapper that writes "<its DIRAC_PILOT_STAMP> <its pid> <its sleep's pid>" to `<markDir>/<tag>`
 * (the tag is the test's, not the stamp, so the file shows which stamp this wrapper saw), sleeps
 * and exits with `code`. The sleep runs in the background so that both pids can be checked.
 */
function wrapper(markDir: string, tag: string, sleepSeconds: number, code: number): string {
  const file = `${markDir}/${tag}`;
  return [
    '#!/bin/bash',
    `sleep ${sleepSeconds} &`,
    `echo "$DIRAC_PILOT_STAMP $$ $!" > "${file}.tmp" && mv "${file}.tmp" "${file}"`,
    'wait $!',
    `exit ${code}`,
    '',
  ].join('\n');
}

function mark(markDir: string, tag: string): { stamp: string; pids: number[] } | null {
  const file = join(markDir, tag);
  if (!existsSync(file)) return null;
  const [stamp, ...pids] = readFileSync(file, 'utf8').trim().split(' ');
  return { stamp: stamp ?? '', pids: pids.map(Number) };
}

/** Alive and not a zombie (an orphan may wait for a reaper that never comes in a container). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function until<T>(
  what: string | (() => string),
  deadlineMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${deadlineMs} ms waiting for ${typeof what === 'string' ? what : what()}${last !== undefined ? ` (last: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

const isFinal = (s: PilotBackendStatus | undefined): boolean => !!s && PILOT_FINAL_STATES.includes(s.status);

/** Polls status until every reference is final; answers the first final status of each. */
async function untilFinal(ce: ComputingElement, refs: string[], deadlineMs: number): Promise<Map<string, PilotBackendStatus>> {
  const first = new Map<string, PilotBackendStatus>();
  let last: Map<string, PilotBackendStatus> = new Map();
  return until(
    () => `final states of ${refs.join(', ')} (last: ${JSON.stringify([...last])})`,
    deadlineMs,
    async () => {
      last = await ce.status(refs.filter((r) => !first.has(r)));
      for (const [r, s] of last) if (isFinal(s)) first.set(r, s);
      return refs.every((r) => first.has(r)) ? first : undefined;
    },
  );
}

function expectOutcome(got: PilotBackendStatus | undefined, want: Outcome): void {
  expect(got?.status).toBe(want.status);
  expect(got?.reason).toMatch(want.reason);
  expect(got?.exitCode).toBe(want.exitCode);
}

/** Every stamp exactly once across submitted + failed; failed reasons one line each. */
function expectNothingLost(stamps: string[], res: Awaited<ReturnType<ComputingElement['submit']>>, reason: RegExp): void {
  const seen = [...res.submitted.map((s) => s.stamp), ...res.failed.map((f) => f.stamp)];
  expect([...seen].sort()).toEqual([...stamps].sort());
  for (const f of res.failed) {
    expect(f.reason).not.toMatch(/\n/);
    expect(f.reason).toMatch(reason);
  }
}

// ---------------------------------------------------------------------------------------------
// The checks, once, per row

describe.each(SETUPS.map((s) => [s.name, s] as const))('%s CE conformance', (_name, setup) => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `wms-ce-conf-${setup.name}-`));
    await mkdir(join(root, 'marks'), { recursive: true });
    await setup.start?.(root);
  });
  afterAll(async () => {
    await setup.stop?.();
    if (root) await rm(root, { recursive: true, force: true });
  });
  const testTimeout = setup.deadlineMs * 2 + 30_000;
  const markDir = () => join(root, 'marks');

  setup.gate('healthy driver', () => {
    let h: Harness;
    const finished: string[] = [];
    beforeAll(async () => {
      h = await setup.healthy(root);
    });
    afterAll(async () => {
      await h?.close();
    });

    it(
      `1. runs two pilots to a final state (exit codes: ${setup.exitCodes === true ? 'told' : 'not told, see the table'}); each saw its own stamp`,
      async () => {
        const stamps = [newStamp(), newStamp()];
        const tags = ['ok', 'three'].map((t) => `${t}-${newStamp().slice(0, 8)}`);
        const res = await h.ce.submit(setup.queue(), [
          { stamp: stamps[0]!, wrapper: wrapper(markDir(), tags[0]!, 1, 0) },
          { stamp: stamps[1]!, wrapper: wrapper(markDir(), tags[1]!, 1, 3) },
        ]);
        expect(res.failed).toEqual([]);
        expect(res.submitted.map((s) => s.stamp)).toEqual(stamps);
        const refs = res.submitted.map((s) => s.reference);
        for (const r of refs) expect(r).toMatch(setup.reference);
        expect(new Set(refs).size).toBe(2);
        finished.push(...refs);

        const st = await untilFinal(h.ce, refs, setup.deadlineMs);
        expectOutcome(st.get(refs[0]!), setup.exit0);
        expectOutcome(st.get(refs[1]!), setup.exit3);
        for (const [i, tag] of tags.entries()) expect(mark(markDir(), tag)?.stamp).toBe(stamps[i]);
      },
      testTimeout,
    );

    it(
      `2. cancels a running pilot: ${setup.cancelled.status}, its processes gone; a second cancel is harmless`,
      async () => {
        const stamp = newStamp();
        const tag = `cancel-${stamp.slice(0, 8)}`;
        const res = await h.ce.submit(setup.queue(), [{ stamp, wrapper: wrapper(markDir(), tag, 60, 0) }]);
        expect(res.failed).toEqual([]);
        const ref = res.submitted[0]!.reference;
        finished.push(ref);
        await until(`${ref} Running`, setup.deadlineMs, async () =>
          (await h.ce.status([ref])).get(ref)?.status === 'Running' ? true : undefined,
        );
        const seen = await until(`the wrapper of ${ref} started`, setup.deadlineMs, () => mark(markDir(), tag) ?? undefined);
        expect(seen.stamp).toBe(stamp);
        expect(seen.pids).toHaveLength(2);
        for (const pid of seen.pids) expect(alive(pid)).toBe(true);

        await h.ce.cancel([ref]);
        const st = await untilFinal(h.ce, [ref], setup.deadlineMs);
        expect(st.get(ref)?.status).toBe(setup.cancelled.status);
        expect(st.get(ref)?.reason).toMatch(setup.cancelled.reason);
        await until(`pids ${seen.pids.join(', ')} gone`, 15_000, () => (seen.pids.some(alive) ? undefined : true));

        await expect(h.ce.cancel([ref])).resolves.toBeUndefined();
        expect(isFinal((await h.ce.status([ref])).get(ref)) || !(await h.ce.status([ref])).has(ref)).toBe(true);
      },
      testTimeout,
    );

    it(
      '3. cleanup of finished references succeeds, and a second cleanup is harmless',
      async () => {
        expect(finished.length, 'checks 1 and 2 left finished references').toBeGreaterThan(0);
        await expect(h.ce.cleanup(finished)).resolves.toBeUndefined();
        await expect(h.ce.cleanup(finished)).resolves.toBeUndefined();
        // Whatever the backend still says of them, none is alive again.
        const st = await h.ce.status(finished);
        for (const [, s] of st) expect(isFinal(s)).toBe(true);
      },
      testTimeout,
    );
  });

  const failureCase = (title: string, c: Case, checks: (h: () => Harness, c: FailureCase) => void) => {
    // A case a CE type cannot have (the local CE has no credentials, no endpoint) has no test:
    // the table above says why. Nothing here is skipped, so CI never sees a skip.
    if ('notApplicable' in c) return;
    c.gate(title, () => {
      let h: Harness;
      beforeAll(async () => {
        h = await c.make(root);
      });
      afterAll(async () => {
        await h?.close();
      });
      checks(() => h, c);
    });
  };

  failureCase('4. bad credentials', setup.badCredentials, (h, c) => {
    it(
      'submit: nothing submitted, both stamps failed with a one-line reason naming the problem; status and cancel reject',
      async () => {
        const stamps = [newStamp(), newStamp()];
        const res = await h().ce.submit(
          setup.queue(),
          stamps.map((stamp, i) => ({ stamp, wrapper: wrapper(markDir(), `bad-${i}-${stamp.slice(0, 8)}`, 1, 0) })),
        );
        expect(res.submitted).toEqual([]);
        expect(res.failed.map((f) => f.stamp)).toEqual(stamps);
        expectNothingLost(stamps, res, c.reason);
        for (const f of res.failed) expect(f.reason).toMatch(/auth|credential|permission|denied/i);
        await expect(h().ce.status([setup.sampleRef])).rejects.toThrow(c.statusError);
        if (c.cancelError) await expect(h().ce.cancel([setup.sampleRef])).rejects.toThrow(c.cancelError);
      },
      testTimeout,
    );
  });

  failureCase('5. unreachable endpoint', setup.unreachable, (h, c) => {
    it(
      'submit: every stamp accounted for exactly once with a clear reason; status and cancel reject',
      async () => {
        const stamps = [newStamp(), newStamp()];
        const res = await h().ce.submit(
          setup.queue(),
          stamps.map((stamp, i) => ({ stamp, wrapper: wrapper(markDir(), `down-${i}-${stamp.slice(0, 8)}`, 1, 0) })),
        );
        expectNothingLost(stamps, res, c.reason);
        expect(res.submitted).toEqual([]);
        await expect(h().ce.status([setup.sampleRef])).rejects.toThrow(c.statusError);
        if (c.cancelError) await expect(h().ce.cancel([setup.sampleRef])).rejects.toThrow(c.cancelError);
      },
      testTimeout,
    );
  });
});
