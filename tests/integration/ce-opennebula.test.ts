/**
 * The OpenNebula CE against the XML-RPC simulator (tests/fakes/opennebula): VMs "boot" by running
 * their START_SCRIPT_BASE64 as local bash processes, so the launcher, the detached wrapper and
 * DIRAC_PILOT_STAMP are exercised for real; states, terminate and errors follow OpenNebula's documented XML-RPC answers.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenNebulaComputingElement } from '../../agents/computing-elements/opennebula.js';
import type { CeQueueTarget, ComputingElement, PilotBackendStatus, PilotSubmission } from '../../agents/computing-elements/types.js';
import { LCM, OneSimulator, STATE } from '../fakes/opennebula/simulator.js';

const QUEUE: CeQueueTarget = {
  site: 'CLOUD.Test.org',
  ce: 'one-ce',
  queue: 'default',
  processors: 1,
  ramMb: 2048,
  timeLimitSeconds: 3600,
  settings: {},
};
const PASSWORD = 's3cret';
const TEMPLATE_ID = 7;

let dir: string;
let sim: OneSimulator;

const stamp = () => randomBytes(16).toString('hex');
/** A wrapper that writes its stamp where the test can see it, then lives `sleep` seconds. */
const wrapper = (sleep: number) => `#!/bin/bash\necho "$DIRAC_PILOT_STAMP" > "${dir}/out/$DIRAC_PILOT_STAMP"\nsleep ${sleep}\n`;
const pilots = (n: number, sleep: number): PilotSubmission[] =>
  Array.from({ length: n }, () => ({ stamp: stamp(), wrapper: wrapper(sleep) }));
const vmId = (ref: string) => Number(ref.split('/').pop());

function makeCe(settings: Record<string, unknown> = {}, endpoint = sim.url): ComputingElement {
  return createOpenNebulaComputingElement({
    ce: 'one-ce',
    settings: { endpoint, user: 'dirac', password: { env: 'ONE_PASSWORD' }, templateId: TEMPLATE_ID, ...settings },
    workDir: join(dir, 'ce'),
    secret: async (ref) => ((ref as { env?: string }).env === 'ONE_PASSWORD' ? PASSWORD : 'not-the-password'),
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

async function waitForStatus(
  ce: ComputingElement,
  refs: string[],
  status: PilotBackendStatus['status'],
): Promise<Map<string, PilotBackendStatus>> {
  return waitFor(`${refs.join(', ')} ${status}`, async () => {
    const st = await ce.status(refs);
    return refs.every((r) => st.get(r)?.status === status) ? st : undefined;
  });
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-one-'));
  sim = new OneSimulator({
    workDir: join(dir, 'sim'),
    user: 'dirac',
    password: PASSWORD,
    templates: { [TEMPLATE_ID]: 'CPU = "1"\nMEMORY = "512"\nDISK = [ IMAGE_ID = "3" ]\nCONTEXT = [ NETWORK = "YES" ]\n' },
  });
  await sim.start();
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'out'), { recursive: true });
});

afterAll(async () => {
  await sim?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('OpenNebula CE on the simulator', () => {
  it('boots two pilots from a template, sees them Running, terminates them', async () => {
    const ce = makeCe({ contextExtra: { SSH_PUBLIC_KEY: '$USER[SSH_PUBLIC_KEY]', NETWORK: true } });
    const ps = pilots(2, 60);
    const { submitted, failed } = await ce.submit(QUEUE, ps);
    expect(failed).toEqual([]);
    expect(submitted.map((s) => s.stamp)).toEqual(ps.map((p) => p.stamp));
    const refs = submitted.map((s) => s.reference);
    for (const r of refs) expect(r).toMatch(/^cloud:\/\/one-ce\/\d+$/);

    for (const p of ps) {
      const vm = [...sim.vms.values()].find((v) => v.name === `wms-pilot-${p.stamp}`)!;
      expect(vm.context).toMatchObject({ DIRAC_PILOT_STAMP: p.stamp, NETWORK: 'YES', SSH_PUBLIC_KEY: '$USER[SSH_PUBLIC_KEY]' });
      expect(vm.template.find(([n]) => n === 'DISK')).toBeDefined(); // the stored template was kept, CONTEXT replaced
    }
    const st = await waitForStatus(ce, refs, 'Running');
    expect(st.get(refs[0]!)!.reason).toBe('VM ACTIVE/RUNNING');
    // the wrappers run detached and know their stamp
    for (const p of ps) {
      const out = join(dir, 'out', p.stamp);
      await waitFor(`pilot output ${p.stamp}`, () => (existsSync(out) ? true : undefined));
      expect(readFileSync(out, 'utf8').trim()).toBe(p.stamp);
    }
    // the launcher returned at once: the start script ended while the wrapper sleeps on
    for (const r of refs) expect(sim.vms.get(vmId(r))!.startScriptExit).toBe(0);
    for (const r of refs) expect(sim.vmProcesses(vmId(r)).length).toBeGreaterThan(0);

    // one pool call answers for both
    const before = sim.calls.length;
    await ce.status(refs);
    expect(sim.calls.slice(before).map((c) => c.method)).toEqual(['one.vmpool.info']);

    await ce.cancel(refs);
    const done = await waitForStatus(ce, refs, 'Deleted');
    expect(done.get(refs[1]!)!.reason).toBe('VM DONE: terminated');
    // Killed processes leave /proc a moment later: wait for it rather than race it.
    for (const r of refs) await waitFor(`VM ${vmId(r)}'s processes gone`, () => (sim.vmProcesses(vmId(r)).length === 0 ? true : undefined));
    expect(sim.calls.filter((c) => c.method === 'one.vm.action').map((c) => c.params[0])).toEqual(['terminate-hard', 'terminate-hard']);
    await ce.cancel(refs); // idempotent on DONE
  });

  it('allocates from a full template; the VM powers off at the pilot end and is reaped by status()', async () => {
    const ce = makeCe({
      templateId: undefined,
      template: 'CPU = "0.5"\nMEMORY = "1024"\nDISK = [ IMAGE = "debian \\"12\\"" ]',
      vmNamePrefix: 'alloc-',
    });
    const [p] = pilots(1, 0);
    const { submitted } = await ce.submit(QUEUE, [p!]);
    const ref = submitted[0]!.reference;
    const vm = sim.vms.get(vmId(ref))!;
    expect(vm.name).toBe(`alloc-${p!.stamp}`);
    expect(vm.template.find(([n]) => n === 'DISK')![1]).toEqual({ IMAGE: 'debian "12"' });
    expect(sim.calls.some((c) => c.method === 'one.vm.allocate')).toBe(true);
    await waitFor('poweroff', () => (vm.state === STATE.POWEROFF ? true : undefined));
    const st = await ce.status([ref]);
    expect(st.get(ref)).toEqual({ status: 'Done', reason: "VM POWEROFF: the guest powered itself off at the pilot's end; VM terminated" });
    expect(vm.state).toBe(STATE.DONE);
    expect(existsSync(join(dir, 'out', p!.stamp))).toBe(true);
  });

  it('without powerOffAtEnd the VM outlives its pilot until cleanup()', async () => {
    const ce = makeCe({ powerOffAtEnd: false });
    const [p] = pilots(1, 0);
    const ref = (await ce.submit(QUEUE, [p!])).submitted[0]!.reference;
    await waitForStatus(ce, [ref], 'Running');
    await waitFor('pilot output', () => (existsSync(join(dir, 'out', p!.stamp)) ? true : undefined));
    await waitFor('the pilot ended', () => (sim.vmProcesses(vmId(ref)).length === 0 ? true : undefined));
    expect((await ce.status([ref])).get(ref)!.status).toBe('Running'); // the VM lives on, as a real one does
    await ce.cleanup([ref]);
    expect(sim.vms.get(vmId(ref))!.state).toBe(STATE.DONE);
  });

  it('reports a VM in a FAILURE state as Failed with the reason, and terminates it', async () => {
    const ce = makeCe();
    const ref = (await ce.submit(QUEUE, pilots(1, 60))).submitted[0]!.reference;
    await waitForStatus(ce, [ref], 'Running');
    sim.setVmState(vmId(ref), STATE.ACTIVE, LCM.EPILOG_FAILURE);
    const st = (await ce.status([ref])).get(ref)!;
    expect(st).toEqual({ status: 'Failed', reason: 'VM ACTIVE/EPILOG_FAILURE: the VM failed; VM terminated' });
    expect(sim.vms.get(vmId(ref))!.state).toBe(STATE.DONE);

    const ref2 = (await ce.submit(QUEUE, pilots(1, 60))).submitted[0]!.reference;
    sim.setVmState(vmId(ref2), STATE.ACTIVE, LCM.BOOT_FAILURE);
    expect((await ce.status([ref2])).get(ref2)!).toMatchObject({
      status: 'Aborted',
      reason: expect.stringMatching(/BOOT_FAILURE: the VM never booted/),
    });
  });

  it('terminates a VM past its maximum lifetime in status()', async () => {
    const ce = makeCe({ maxLifetimeSeconds: 3600 });
    const ref = (await ce.submit(QUEUE, pilots(1, 60))).submitted[0]!.reference;
    await waitForStatus(ce, [ref], 'Running');
    sim.age(vmId(ref), 7200);
    const st = (await ce.status([ref])).get(ref)!;
    expect(st.status).toBe('Failed');
    expect(st.reason).toMatch(/^VM older than the maximum lifetime \(\d+ s > 3600 s\), was ACTIVE\/RUNNING; VM terminated$/);
    expect(sim.vms.get(vmId(ref))!.state).toBe(STATE.DONE);
    await waitFor(`VM ${vmId(ref)}'s processes gone`, () => (sim.vmProcesses(vmId(ref)).length === 0 ? true : undefined));
  });

  it('retries a terminate refused in a transitional state (ACTION)', async () => {
    const ce = makeCe();
    const ref = (await ce.submit(QUEUE, pilots(1, 60))).submitted[0]!.reference;
    sim.setVmState(vmId(ref), STATE.ACTIVE, LCM.PROLOG);
    await ce.cancel([ref]); // refused for now, not an error
    expect(sim.vms.get(vmId(ref))!.lcmState).toBe(LCM.PROLOG);
    sim.setVmState(vmId(ref), STATE.ACTIVE, LCM.RUNNING);
    expect((await ce.status([ref])).get(ref)!.status).toBe('Deleted');
  });

  it('sweeps powered-off VMs of its prefix in cleanup(), and counts slots against maxVms', async () => {
    const ce = makeCe({ vmNamePrefix: 'sweep-', maxVms: 5 });
    const refs = (await ce.submit(QUEUE, pilots(2, 60))).submitted.map((s) => s.reference);
    expect(await ce.availableSlots(QUEUE)).toBe(3);
    await waitForStatus(ce, refs, 'Running');
    sim.setVmState(vmId(refs[0]!), STATE.POWEROFF);
    await ce.cleanup([]);
    expect(sim.vms.get(vmId(refs[0]!))!.state).toBe(STATE.DONE);
    expect(sim.vms.get(vmId(refs[1]!))!.state).toBe(STATE.ACTIVE);
    expect(await ce.availableSlots(QUEUE)).toBe(4);
    await ce.cancel(refs);
    expect(await makeCe().availableSlots(QUEUE)).toBeNull();
  });

  it('names the endpoint on a bad password, and stops asking', async () => {
    const ce = makeCe({ password: { env: 'WRONG' } });
    const ps = pilots(2, 1);
    const before = sim.calls.length;
    const { submitted, failed } = await ce.submit(QUEUE, ps);
    expect(submitted).toEqual([]);
    expect(failed.map((f) => f.stamp)).toEqual(ps.map((p) => p.stamp));
    expect(failed[0]!.reason).toBe(
      `OpenNebula CE one-ce: one.template.instantiate at ${sim.url}: [AUTHENTICATION] [one.template.instantiate] User couldn't be authenticated, aborting call.`,
    );
    expect(failed[1]!.reason).toBe(failed[0]!.reason);
    expect(sim.calls.length - before).toBe(1);
    await expect(ce.status(['cloud://one-ce/0'])).rejects.toThrow(`one.vmpool.info at ${sim.url}: [AUTHENTICATION]`);
  });

  it('reports every pilot failed when the password cannot be read', async () => {
    const ce = createOpenNebulaComputingElement({
      ce: 'one-ce',
      settings: { endpoint: sim.url, user: 'dirac', password: { env: 'ONE_PASSWORD' }, templateId: TEMPLATE_ID },
      workDir: join(dir, 'ce'),
      secret: async (_ref, what) => {
        throw new Error(`${what}: environment variable ONE_PASSWORD is not set`);
      },
    });
    const ps = pilots(2, 1);
    const { submitted, failed } = await ce.submit(QUEUE, ps);
    expect(submitted).toEqual([]);
    expect(failed).toEqual(
      ps.map((p) => ({ stamp: p.stamp, reason: 'OpenNebula CE one-ce settings.password: environment variable ONE_PASSWORD is not set' })),
    );
  });

  it('names the endpoint when nothing listens there', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}/RPC2`;
    const ce = makeCe({}, endpoint);
    const ps = pilots(2, 1);
    const { submitted, failed } = await ce.submit(QUEUE, ps);
    expect(submitted).toEqual([]);
    expect(failed).toHaveLength(2);
    expect(failed[0]!.reason).toMatch(
      new RegExp(
        `^OpenNebula CE one-ce: one\\.template\\.instantiate at ${endpoint.replace(/[.]/g, '\\.')}: cannot reach the endpoint \\(.*ECONNREFUSED`,
      ),
    );
    await expect(ce.status(['cloud://one-ce/1'])).rejects.toThrow(
      /one\.vmpool\.info at http:\/\/127\.0\.0\.1:\d+\/RPC2: cannot reach the endpoint/,
    );
    await expect(ce.cancel(['cloud://one-ce/1'])).rejects.toThrow(/cancel failed for 1 VM/);
  });

  it('loses nothing: a refused allocate is in failed, the others go on', async () => {
    const quotaSim = new OneSimulator({
      workDir: join(dir, 'quota'),
      user: 'dirac',
      password: PASSWORD,
      quotaVms: 1,
      templates: { [TEMPLATE_ID]: 'CPU = "1"' },
    });
    await quotaSim.start();
    try {
      const ce = makeCe({}, quotaSim.url);
      const ps = pilots(2, 60);
      const { submitted, failed } = await ce.submit(QUEUE, ps);
      expect(submitted.map((s) => s.stamp)).toEqual([ps[0]!.stamp]);
      expect(failed).toEqual([
        { stamp: ps[1]!.stamp, reason: expect.stringMatching(/one\.template\.instantiate at .*: \[ALLOCATE\] .*quota/) },
      ]);
    } finally {
      await quotaSim.close();
    }
  });

  it('reports faults and HTTP 500, and finds a VM whose reply was lost', async () => {
    const ce = makeCe({ timeoutSeconds: 1 });
    const ps = pilots(4, 60);
    sim.failNext({ kind: 'fault', code: -501, message: 'Type mismatch' }, { method: 'one.template.instantiate' });
    const r1 = await ce.submit(QUEUE, [ps[0]!]);
    expect(r1.failed[0]!.reason).toBe(`OpenNebula CE one-ce: one.template.instantiate at ${sim.url}: XML-RPC fault -501: Type mismatch`);

    sim.failNext({ kind: 'http500' }, { method: 'one.template.instantiate' });
    const r2 = await ce.submit(QUEUE, [ps[1]!, ps[2]!]);
    expect(r2.failed).toEqual([
      { stamp: ps[1]!.stamp, reason: `OpenNebula CE one-ce: one.template.instantiate at ${sim.url}: HTTP 500: Internal Server Error` },
    ]);
    expect(r2.submitted.map((s) => s.stamp)).toEqual([ps[2]!.stamp]);

    sim.failNext({ kind: 'http500', afterDispatch: true }, { method: 'one.template.instantiate' });
    const r3 = await ce.submit(QUEUE, [ps[3]!]);
    expect(r3.failed).toEqual([]);
    const id = vmId(r3.submitted[0]!.reference);
    expect(sim.vms.get(id)!.name).toBe(`wms-pilot-${ps[3]!.stamp}`);

    sim.failNext({ kind: 'hang' }, { method: 'one.vmpool.info' });
    await expect(ce.status([r3.submitted[0]!.reference])).rejects.toThrow(`one.vmpool.info at ${sim.url}: no reply within 1000 ms`);
    await ce.cancel([...r2.submitted, ...r3.submitted].map((s) => s.reference)).catch(() => undefined);
  });
});
