/**
 * The HTCondor CE against the fake HTCondor tools (tests/fakes/htcondor, put first on PATH
 * through DriverOptions.env): real processes started through condor_submit, followed through
 * condor_q -json and condor_history -json, removed with condor_rm.
 */
import { existsSync } from 'node:fs';
import { readFile, stat, unlink, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONDOR_QUEUE, exitWrapper, fakeCondor, newStamp, type FakeCondor } from '../helpers/htcondor.js';

const open: FakeCondor[] = [];
async function setup(o: Parameters<typeof fakeCondor>[0] = {}): Promise<FakeCondor> {
  const h = await fakeCondor(o);
  open.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

async function waitForFile(path: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      const text = await readFile(path, 'utf8');
      if (text.endsWith('\n')) return text;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} did not appear`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('HTCondor CE on the fake HTCondor tools', () => {
  it('submits pilots in one cluster, sees them Waiting, Running, then Done / Failed "exit code 3"', async () => {
    const h = await setup();
    const [ok, bad] = [newStamp(), newStamp()];
    const { submitted, failed } = await h.ce.submit(CONDOR_QUEUE, [
      { stamp: ok, wrapper: exitWrapper(h.outDir, 0, 1.5) },
      { stamp: bad, wrapper: exitWrapper(h.outDir, 3, 1.5) },
    ]);
    expect(failed).toEqual([]);
    expect(submitted.map((s) => s.stamp)).toEqual([ok, bad]);
    const [refOk, refBad] = submitted.map((s) => s.reference) as [string, string];
    expect(refOk).toMatch(/^htcondorce:\/\/ce\.test\.org\/1\.0$/);
    expect(refBad).toBe('htcondorce://ce.test.org/1.1');

    // The wrapper is kept (mode 0700) until cleanup; the submit description is gone.
    expect((await stat(join(h.workDir, `${ok}.sh`))).mode & 0o777).toBe(0o700);
    expect((await readdir(h.workDir)).filter((f) => f.endsWith('.sub'))).toEqual([]);

    const first = await h.ce.status([refOk, refBad]);
    expect(first.get(refOk)?.status).toMatch(/Waiting|Running/);
    await h.waitForStatus(refOk, ['Running']);
    // Each proc got its own stamp in its environment.
    expect((await waitForFile(join(h.outDir, ok))).split(' ')[0]).toBe(ok);
    expect((await waitForFile(join(h.outDir, bad))).split(' ')[0]).toBe(bad);

    expect(await h.waitForStatus(refOk, ['Done', 'Failed'])).toEqual({ status: 'Done', reason: 'exit code 0', exitCode: 0 });
    expect(await h.waitForStatus(refBad, ['Done', 'Failed'])).toEqual({ status: 'Failed', reason: 'exit code 3', exitCode: 3 });

    // Both left the queue: condor_q prints nothing at all, the answer came from condor_history.
    const q = await h.runner.run(['condor_q', '-json', '1.0', '1.1']);
    expect(q).toEqual({ code: 0, stdout: '', stderr: '' });

    await h.ce.cleanup([refOk, refBad]);
    expect(existsSync(join(h.workDir, `${ok}.sh`))).toBe(false);
    expect(existsSync(join(h.workDir, `${bad}.out`))).toBe(false);
    expect(existsSync(join(h.workDir, '1.0.stamp'))).toBe(false);
  });

  it('reports a held job (its executable vanished before it started) as Aborted with the hold reason', async () => {
    const h = await setup({ idleMs: 1500 });
    const stamp = newStamp();
    const { submitted } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 0) }]);
    const ref = submitted[0]!.reference;
    await unlink(join(h.workDir, `${stamp}.sh`));
    const st = await h.waitForStatus(ref, ['Aborted', 'Failed']);
    expect(st.status).toBe('Aborted');
    expect(st.reason).toMatch(/^held \(13 TransferInputError, subcode 2\): .*No such file or directory/);
    // A held job stays in the queue until removed: cleanup removes it.
    await h.ce.cleanup([ref]);
    expect((await h.ce.status([ref])).get(ref)).toEqual({ status: 'Aborted', reason: expect.stringMatching(/^removed: via condor_rm/) });
  });

  it('maps on_exit_hold (subcode 55, as DIRAC submits) to Failed with the exit code', async () => {
    const h = await setup({ settings: { extraSubmitLines: ['on_exit_hold = ExitCode =!= 0', 'on_exit_hold_subcode = 55'] } });
    const stamp = newStamp();
    const { submitted } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 7, 0.2) }]);
    const st = await h.waitForStatus(submitted[0]!.reference, ['Failed', 'Aborted', 'Done']);
    expect(st).toMatchObject({ status: 'Failed', exitCode: 7 });
    expect(st.reason).toMatch(/^exit code 7, held \(3 JobPolicy, subcode 55\)/);
  });

  it('cancels with condor_rm: the pilot is killed and shows Aborted; cancelling again is harmless', async () => {
    const h = await setup();
    const stamp = newStamp();
    const { submitted } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 0, 60) }]);
    const ref = submitted[0]!.reference;
    await h.waitForStatus(ref, ['Running']);
    const pid = Number((await waitForFile(join(h.outDir, stamp))).trim().split(' ')[1]);
    expect(alive(pid)).toBe(true);
    await h.ce.cancel([ref]);
    expect((await h.ce.status([ref])).get(ref)?.status).toBe('Aborted');
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    await expect(h.ce.cancel([ref, 'htcondorce://ce.test.org/99.0'])).resolves.toBeUndefined();
    const rm = await h.runner.run(['condor_rm', '99.0']);
    expect(rm).toMatchObject({ code: 1, stderr: 'Job 99.0 not found\n' });
  });

  it('answers nothing for ids neither condor_q nor condor_history knows, and ignores other CEs', async () => {
    const h = await setup();
    const q = await h.runner.run(['condor_q', '-json', '5.0']);
    expect(q.stdout).toBe('');
    const st = await h.ce.status(['htcondorce://ce.test.org/5.0', 'htcondorce://other.ce/1.0', 'local://ce.test.org/12']);
    expect(st.size).toBe(0);
  });

  it('submits to an HTCondor-CE with -remote: spooling (held 16) counts as Waiting, then Done', async () => {
    const h = await setup({ settings: { remote: true }, idleMs: 800 });
    const stamp = newStamp();
    const { submitted, failed } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 0, 0.2) }]);
    expect(failed).toEqual([]);
    const ref = submitted[0]!.reference;
    const st = (await h.ce.status([ref])).get(ref);
    expect(st).toMatchObject({ status: 'Waiting', reason: expect.stringMatching(/^held \(16 SpoolingInput\)/) });
    // The wrapper was spooled at submit time: removing the local copy does not matter.
    await unlink(join(h.workDir, `${stamp}.sh`));
    expect(await h.waitForStatus(ref, ['Done', 'Failed', 'Aborted'])).toMatchObject({ status: 'Done' });
  });

  it('gives a clear error when the schedd cannot be reached', async () => {
    const h = await setup({ env: { WMS_FAKE_CONDOR_DOWN: '1' } });
    const stamps = [newStamp(), newStamp()];
    const { submitted, failed } = await h.ce.submit(
      CONDOR_QUEUE,
      stamps.map((stamp) => ({ stamp, wrapper: exitWrapper(h.outDir, 0) })),
    );
    expect(submitted).toEqual([]);
    expect(failed.map((f) => f.stamp)).toEqual(stamps);
    expect(failed[0]!.reason).toMatch(
      /^HTCondor CE ce\.test\.org: condor_submit failed \(exit 1\): ERROR: Failed to connect to local queue manager/,
    );
    // Nothing left behind for the failed pilots.
    expect(existsSync(join(h.workDir, `${stamps[0]}.sh`))).toBe(false);
    await expect(h.ce.status(['htcondorce://ce.test.org/1.0'])).rejects.toThrow(/condor_q failed \(exit 1\): .*Failed to connect to/);
    await expect(h.ce.cancel(['htcondorce://ce.test.org/1.0'])).rejects.toThrow(/condor_rm failed \(exit 1\): .*Failed to connect/);
  });

  it('gives a clear error when the HTCondor tools are not installed', async () => {
    const h = await setup({ env: { PATH: '/nonexistent-wms-bin' } });
    const stamp = newStamp();
    const { failed } = await h.ce.submit(CONDOR_QUEUE, [{ stamp, wrapper: exitWrapper(h.outDir, 0) }]);
    expect(failed).toEqual([{ stamp, reason: expect.stringMatching(/condor_submit is not installed or not on PATH/) }]);
    await expect(h.ce.status(['htcondorce://ce.test.org/1.0'])).rejects.toThrow(/condor_q is not installed or not on PATH/);
  });

  it('presents its token and fails clearly when the token cannot be read or is refused', async () => {
    const good = await setup({
      settings: { token: { env: 'WMS_TEST_CONDOR_TOKEN' } },
      env: { WMS_TEST_CONDOR_TOKEN: 'tok-1', WMS_FAKE_CONDOR_TOKEN: 'tok-1' },
    });
    const s1 = newStamp();
    const r1 = await good.ce.submit(CONDOR_QUEUE, [{ stamp: s1, wrapper: exitWrapper(good.outDir, 0, 0.1) }]);
    expect(r1.failed).toEqual([]);
    expect((await stat(join(good.workDir, '.token', 'wms-idtoken'))).mode & 0o777).toBe(0o600);
    await good.waitForStatus(r1.submitted[0]!.reference, ['Done']);

    const missing = await setup({ settings: { token: { file: '/nonexistent/condor.token' } } });
    const s2 = newStamp();
    const r2 = await missing.ce.submit(CONDOR_QUEUE, [{ stamp: s2, wrapper: exitWrapper(missing.outDir, 0) }]);
    expect(r2.failed).toEqual([
      { stamp: s2, reason: expect.stringMatching(/settings\.token: cannot read \/nonexistent\/condor\.token \(ENOENT\)/) },
    ]);

    const tokenFile = join(missing.outDir, 'wrong.token');
    await writeFile(tokenFile, 'tok-2\n');
    const refused = await setup({ settings: { remote: true, token: { file: tokenFile } }, env: { WMS_FAKE_CONDOR_TOKEN: 'tok-1' } });
    const s3 = newStamp();
    const r3 = await refused.ce.submit(CONDOR_QUEUE, [{ stamp: s3, wrapper: exitWrapper(refused.outDir, 0) }]);
    expect(r3.failed[0]!.reason).toMatch(/Failed to connect to queue manager ce\.test\.org \| AUTHENTICATE:1003/);
  });
});
