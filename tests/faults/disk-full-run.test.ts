/**
 * Issue 10, "Disk", inside a 300-job run: one pilot's disk is filled by a job and the next job
 * on that pilot is Done. tests/faults/disk-full.test.ts proves it for one job agent on a tmpfs;
 * here it is the real server with its local pilots (tests/helpers/faults.ts, scenario
 * 'disk-full'): each live pilot's work dir gets a tmpfs of its own (64 MB, above the harness's
 * minDiskMb of 50) before its first job, and a third of the way through the 300 jobs one extra
 * "filler" job (not one of the ledger's, Priority 10 so that it is matched next) writes zeros in
 * its job dir until ENOSPC and stays. Every one of the 300 must be Done exactly once with no
 * payload left; the filler Failed for the disk; its pilot ran later jobs that ended Done, and
 * its tmpfs had its space back, with no deleted file of the filler held open by the pilot.
 * Needs root (it mounts tmpfs), as tests/faults/disk-full.test.ts; elsewhere it fails saying so.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DISK_FULL_MB, FaultSystem } from '../helpers/faults.js';
import { expectEveryJobDoneOnce } from '../helpers/faults-expect.js';

const JOBS = Number(process.env['FAULTS_JOBS'] ?? 300);
let sys: FaultSystem | null = null;

beforeAll(async () => {
  sys = await FaultSystem.start({ name: 'disk_full', slots: 6, payloadSeconds: 1, log: (l) => console.log(`[disk-full] ${l}`) });
});
afterAll(async () => {
  await sys?.destroy(); // unmounts every tmpfs before the run dir goes
});

it(`a job fills its pilot's disk mid-run: ${JOBS} jobs, each Done exactly once, the pilot's next job Done`, async () => {
  const r = await expectEveryJobDoneOnce(sys!, 'disk-full', JOBS, ['disk filled by a job']);
  const d = r.disk!;
  const why = JSON.stringify({ ...d, mounts: sys!.diskMounts }, null, 2);
  expect(d, why).toBeDefined();
  expect(d.mounted, why).toBeGreaterThan(0);
  // The filler ran on a pilot with a tmpfs of its own and Failed for the disk.
  expect(d.fillerPilotMounted, why).toBe(true);
  expect(d.filler?.status, why).toBe('Failed');
  expect(`${d.filler?.minorStatus}: ${d.filler?.applicationStatus}`, why).toMatch(
    /^Job has insufficient disk space to continue: \d+ MB free in the job directory, below \d+ MB$|no space left on device/i,
  );
  // Its pilot took more jobs afterwards, and they ended Done.
  expect(d.laterJobs.length, why).toBeGreaterThan(0);
  expect(
    d.laterJobs.every((j) => j.status === 'Done'),
    why,
  ).toBe(true);
  // The space came back: nothing of the filler held open by the pilot, its tmpfs free again.
  expect(d.afterNextJob, why).not.toBeNull();
  expect(d.afterNextJob!.pilotAlive, why).toBe(true);
  expect(d.afterNextJob!.deletedOpen, why).toEqual([]);
  expect(d.afterNextJob!.freeMb, why).toBeGreaterThan(DISK_FULL_MB - 2);
  if (d.afterRun) {
    expect(d.afterRun.deletedOpen, why).toEqual([]);
    expect(d.afterRun.freeMb, why).toBeGreaterThan(DISK_FULL_MB - 2);
  }
  // No pilot broken by its tmpfs (mounted once it had taken its token file, before its first job).
  expect(r.failedPilots, why).toEqual([]);
  // No tmpfs left mounted.
  expect(
    sys!.diskMounts.filter((m) => !m.unmounted),
    why,
  ).toEqual([]);
});
