/**
 * The SLURM CE against the real single-node cluster (scripts/slurm-env.sh), with its commands
 * run on this machine and, the same suite again, over SSH to a private sshd on 127.0.0.1.
 * The pilots' "wrapper" is a small bash script that writes $DIRAC_PILOT_STAMP and $SLURM_JOB_ID
 * to a file, sleeps and exits with a chosen code.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveSecret } from '../../agents/computing-elements/secrets.js';
import { createSlurmComputingElement } from '../../agents/computing-elements/slurm.js';
import type { CeQueueTarget, ComputingElement, DriverOptions, PilotBackendStatus } from '../../agents/computing-elements/types.js';
import { defaultPartition, describeSlurm, describeSsh, sparePort, startSshd, type TestSshd } from '../helpers/slurm.js';

const CE = 'slurm-test';

function stamp(): string {
  return randomBytes(16).toString('hex');
}

function wrapper(markDir: string, sleepSeconds: number, exitCode: number): string {
  return [
    '#!/bin/bash',
    `echo "$DIRAC_PILOT_STAMP $SLURM_JOB_ID" > ${markDir}/"$DIRAC_PILOT_STAMP".env`,
    'echo "pilot out"; echo "pilot err" >&2',
    `sleep ${sleepSeconds}`,
    `exit ${exitCode}`,
    '',
  ].join('\n');
}

function queue(partition: string): CeQueueTarget {
  return { site: 'Test.Site', ce: CE, queue: partition, processors: 1, ramMb: 100, timeLimitSeconds: 300, settings: {} };
}

function driver(workDir: string, settings: Record<string, unknown> = {}, env?: Record<string, string>): ComputingElement {
  const o: DriverOptions = { ce: CE, settings, workDir, secret: (ref, what) => resolveSecret(ref, what), ...(env ? { env } : {}) };
  return createSlurmComputingElement(o);
}

/** Polls status until `done(s)` holds for every reference; returns every status seen per ref. */
async function pollUntil(
  ce: ComputingElement,
  refs: string[],
  done: (s: PilotBackendStatus | undefined) => boolean,
  timeoutMs = 60_000,
): Promise<{ last: Map<string, PilotBackendStatus>; seen: Map<string, Set<string>> }> {
  const seen = new Map(refs.map((r) => [r, new Set<string>()]));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const last = await ce.status(refs);
    for (const [r, s] of last) seen.get(r)?.add(s.status);
    if (refs.every((r) => done(last.get(r)))) return { last, seen };
    if (Date.now() > end) throw new Error(`timed out; last statuses: ${JSON.stringify([...last])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const final = (s: PilotBackendStatus | undefined) => !!s && ['Done', 'Failed', 'Aborted'].includes(s.status);

/**
 * The suite, run per runner. `make(settings, env)` builds a CE whose cluster-side workDir is
 * `clusterDir()` (files checked on this machine, which is also the cluster's only node).
 */
function ceSuite(make: (settings?: Record<string, unknown>, env?: Record<string, string>) => ComputingElement, clusterDir: () => string) {
  const partition = defaultPartition();
  let ce: ComputingElement;
  beforeAll(() => {
    ce = make();
  });
  afterAll(async () => {
    await ce?.close();
  });

  it('runs two pilots: Running, then Done with exit code 0 and Failed with "exit code 3"; cleanup removes their files', async () => {
    const dir = clusterDir();
    const [a, b] = [stamp(), stamp()];
    const res = await ce.submit(queue(partition), [
      { stamp: a, wrapper: wrapper(dir, 4, 0) },
      { stamp: b, wrapper: wrapper(dir, 4, 3) },
    ]);
    expect(res.failed).toEqual([]);
    expect(res.submitted.map((s) => s.stamp)).toEqual([a, b]);
    const refs = res.submitted.map((s) => s.reference);
    for (const r of refs) expect(r).toMatch(new RegExp(`^slurm://${CE}/\\d+$`));

    const { last, seen } = await pollUntil(ce, refs, final);
    for (const r of refs) expect([...seen.get(r)!]).toContain('Running');
    expect(last.get(refs[0]!)).toEqual({ status: 'Done', reason: 'exit code 0', exitCode: 0 });
    expect(last.get(refs[1]!)).toEqual({ status: 'Failed', reason: 'exit code 3', exitCode: 3 });

    // The job saw its stamp and its id; its output went to <workDir>/<stamp>.<jobid>.out|err.
    for (const [i, st] of [a, b].entries()) {
      const id = refs[i]!.split('/').pop()!;
      expect(readFileSync(join(dir, `${st}.env`), 'utf8').trim()).toBe(`${st} ${id}`);
      expect(readFileSync(join(dir, `${st}.${id}.out`), 'utf8')).toContain('pilot out');
      expect(readFileSync(join(dir, `${st}.${id}.err`), 'utf8')).toContain('pilot err');
    }
    await ce.cleanup(refs);
    for (const [i, st] of [a, b].entries()) {
      const id = refs[i]!.split('/').pop()!;
      expect(existsSync(join(dir, `${st}.${id}.out`))).toBe(false);
      expect(existsSync(join(dir, `${st}.${id}.err`))).toBe(false);
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.out') || n.endsWith('.err'))).toEqual([]);
  });

  it('cancels a running pilot: Aborted with a CANCELLED reason', async () => {
    const res = await ce.submit(queue(partition), [{ stamp: stamp(), wrapper: wrapper(clusterDir(), 120, 0) }]);
    expect(res.failed).toEqual([]);
    const ref = res.submitted[0]!.reference;
    await pollUntil(ce, [ref], (s) => s?.status === 'Running');
    await ce.cancel([ref]);
    const { last } = await pollUntil(ce, [ref], final);
    expect(last.get(ref)!.status).toBe('Aborted');
    expect(last.get(ref)!.reason).toMatch(/CANCELLED/);
    await ce.cancel([ref]); // again: SLURM's scancel is idempotent
    await ce.cleanup([ref]);
  });

  it("reports every pilot of a refused submission failed, with sbatch's message", async () => {
    const res = await ce.submit({ ...queue('no-such-partition') }, [
      { stamp: stamp(), wrapper: wrapper(clusterDir(), 1, 0) },
      { stamp: stamp(), wrapper: wrapper(clusterDir(), 1, 0) },
    ]);
    expect(res.submitted).toEqual([]);
    expect(res.failed).toHaveLength(2);
    expect(res.failed[0]!.reason).toMatch(/^SLURM CE slurm-test: sbatch refused the pilot on .*Invalid partition name specified/);
    expect(res.failed[1]!.reason).toMatch(/Invalid partition name specified.*\(not tried after that failure\)$/);
  });

  it("leaves out references SLURM does not know, and other CEs' references", async () => {
    const got = await ce.status([`slurm://${CE}/99999999`, 'slurm://other-ce/1', 'local://x/1']);
    expect(got.size).toBe(0);
  });

  it('availableSlots: null without maxJobs, a count with it', async () => {
    expect(await ce.availableSlots(queue(partition))).toBeNull();
    const limited = make({ maxJobs: 1000 });
    try {
      const n = await limited.availableSlots(queue(partition));
      expect(n).not.toBeNull();
      expect(n!).toBeLessThanOrEqual(1000);
      expect(n!).toBeGreaterThan(990);
    } finally {
      await limited.close();
    }
  });
}

describeSlurm('SLURM CE, commands on this machine', () => {
  let workDir = '';
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wms-slurm-'));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });
  const make = (settings: Record<string, unknown> = {}, env?: Record<string, string>) => driver(workDir, settings, env);
  ceSuite(make, () => workDir);

  it('without sbatch on PATH: submit fails with a clear reason, status throws', async () => {
    const ce = make({}, { PATH: '' });
    try {
      const st = stamp();
      const res = await ce.submit(queue('debug'), [{ stamp: st, wrapper: '#!/bin/bash\ntrue\n' }]);
      expect(res.submitted).toEqual([]);
      expect(res.failed).toEqual([{ stamp: st, reason: 'SLURM CE slurm-test: local: sbatch: command not found (PATH=)' }]);
      await expect(ce.status([`slurm://${CE}/1`])).rejects.toThrow(/^SLURM CE slurm-test: status: local: squeue: command not found/);
      await expect(ce.cancel([`slurm://${CE}/1`])).rejects.toThrow(/scancel: command not found/);
    } finally {
      await ce.close();
    }
  });

  it('an unreachable login node: submit fails naming the host and port once, status throws', async () => {
    const port = await sparePort(); // nothing listens there
    process.env['WMS_TEST_SLURM_PW'] = 'x';
    const ce = make({ host: '127.0.0.1', port, user: 'root', password: { env: 'WMS_TEST_SLURM_PW' } });
    try {
      const st = stamp();
      const res = await ce.submit(queue('debug'), [{ stamp: st, wrapper: '#!/bin/bash\ntrue\n' }]);
      expect(res.failed).toHaveLength(1);
      expect(res.failed[0]!.reason).toBe(`SLURM CE slurm-test: cannot connect to 127.0.0.1:${port}: connection refused`);
      await expect(ce.status([`slurm://${CE}/1`])).rejects.toThrow(
        `SLURM CE slurm-test: status: cannot connect to 127.0.0.1:${port}: connection refused`,
      );
    } finally {
      await ce.close();
      delete process.env['WMS_TEST_SLURM_PW'];
    }
  });

  it('a secret that is not there: submit fails naming the setting', async () => {
    const ce = make({ host: '127.0.0.1', user: 'root', privateKey: { env: 'WMS_TEST_NO_SUCH_VAR' } });
    const res = await ce.submit(queue('debug'), [{ stamp: stamp(), wrapper: '#!/bin/bash\ntrue\n' }]);
    expect(res.failed[0]!.reason).toBe('SLURM CE slurm-test: privateKey: environment variable WMS_TEST_NO_SUCH_VAR is not set');
    await ce.close();
  });
});

describeSsh('SLURM CE, commands over SSH to 127.0.0.1', () => {
  let sshd: TestSshd;
  let workDir = '';
  beforeAll(async () => {
    sshd = await startSshd();
    workDir = await mkdtemp(join(tmpdir(), 'wms-slurm-ssh-'));
  });
  afterAll(async () => {
    await sshd?.stop();
    await rm(workDir, { recursive: true, force: true });
  });
  const make = (settings: Record<string, unknown> = {}) =>
    driver(join(workDir, 'local-side'), {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      privateKey: { file: sshd.keyFile },
      knownHostKey: sshd.hostKey,
      workDir: join(workDir, 'cluster-side'),
      ...settings,
    });
  ceSuite(make, () => join(workDir, 'cluster-side'));

  it('a key the server refuses: submit fails with "authentication failed", status throws', async () => {
    const ce = make({ privateKey: { file: sshd.wrongKeyFile } });
    try {
      const res = await ce.submit(queue('debug'), [{ stamp: stamp(), wrapper: '#!/bin/bash\ntrue\n' }]);
      expect(res.failed[0]!.reason).toMatch(/^SLURM CE slurm-test: cannot log in to \S+@127\.0\.0\.1:\d+: authentication failed/);
      await expect(ce.status([`slurm://${CE}/1`])).rejects.toThrow(/cannot log in to \S+@127\.0\.0\.1:\d+: authentication failed/);
    } finally {
      await ce.close();
    }
  });

  it('a host key that is not the known one: refused', async () => {
    const ce = make({ knownHostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    try {
      await expect(ce.status([`slurm://${CE}/1`])).rejects.toThrow(/host key verification failed/);
    } finally {
      await ce.close();
    }
  });
});
