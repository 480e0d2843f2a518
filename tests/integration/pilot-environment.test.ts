/**
 * The pilot's check-environment on this machine (real systeminformation, real statfs) and the
 * batch-system detection from the environment.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvironmentReportSchema } from '../../core/pilot-protocol.js';
import { checkEnvironment, detectBatchSystem } from '../../pilot/commands/check-environment.js';
import { isPilotCommandError, type PilotCommandError } from '../../pilot/commands/command-error.js';

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'wms-pilot-env-'));
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<PilotCommandError> {
  try {
    await p;
  } catch (e) {
    if (isPilotCommandError(e)) return e;
    throw e;
  }
  throw new Error('expected a PilotCommandError');
}

describe('checkEnvironment', () => {
  it('reports the node in the shape the protocol expects', async () => {
    const r = await checkEnvironment({ workDir, fsType: 'ext4', minDiskMb: 0, env: {} });
    expect(Value.Check(EnvironmentReportSchema, r)).toBe(true);
    expect(r.workDir).toBe(workDir);
    expect(r.fsType).toBe('ext4');
    expect(r.diskFreeMb).toBeGreaterThan(0);
    expect(r.cores).toBeGreaterThan(0);
    expect(r.allowedCores).toBeGreaterThan(0);
    expect(r.memoryMb).toBeGreaterThan(0);
    expect(r.hostname).not.toBe('');
    expect(r.os).not.toBe('');
    expect(r.kernel).not.toBe('');
    expect(r.cpuModel).not.toBe('');
    expect(Array.isArray(r.gpus)).toBe(true);
    expect(r.nodeVersion).toBe(process.version);
    expect(r.batchSystem).toBe('local');
    expect(r.batchJobId).toBeNull();
  });

  it('names the file system itself when the wrapper could not', async () => {
    const r = await checkEnvironment({ workDir, fsType: '', minDiskMb: 0, env: {} });
    expect(r.fsType).not.toBe('');
  });

  it('refuses the node below the minimum free disk, saying what it found and needs', async () => {
    const need = 1_000_000_000_000;
    const e = await refusal(checkEnvironment({ workDir, fsType: 'ext4', minDiskMb: need, env: {} }));
    expect(e.command).toBe('check-environment');
    expect(e.exitCode).toBe(20);
    expect(e.reason).toMatch(new RegExp(`^disk: \\d+ MB free in ${workDir} \\(ext4\\), need ${need} MB$`));
  });

  it('refuses a work dir it cannot read', async () => {
    const missing = join(workDir, 'not-there');
    const e = await refusal(checkEnvironment({ workDir: missing, fsType: 'ext4', minDiskMb: 0, env: {} }));
    expect(e.reason).toBe(`disk: cannot read the free space of ${missing} (ENOENT)`);
  });

  it('still reports the node when the probes have almost no time', async () => {
    const r = await checkEnvironment({ workDir, fsType: 'ext4', minDiskMb: 0, env: {}, probeTimeoutMs: 1 });
    expect(Value.Check(EnvironmentReportSchema, r)).toBe(true);
    expect(r.cores).toBeGreaterThan(0);
    expect(r.memoryMb).toBeGreaterThan(0);
    for (const note of r.notes) expect(note).toMatch(/within 1 ms/);
  });

  it('reads the HTCondor job id from the job ad', async () => {
    const ad = join(workDir, '.job.ad');
    await writeFile(ad, 'ClusterId = 4321\nProcId = 7\nOwner = "pilot"\n');
    const r = await checkEnvironment({ workDir, fsType: 'ext4', minDiskMb: 0, env: { _CONDOR_JOB_AD: ad } });
    expect(r.batchSystem).toBe('htcondor');
    expect(r.batchJobId).toBe('4321.7');
  });
});

describe('detectBatchSystem', () => {
  it('recognises each batch system and its job id', () => {
    expect(detectBatchSystem({ SLURM_JOB_ID: '77' })).toEqual({ batchSystem: 'slurm', batchJobId: '77' });
    expect(detectBatchSystem({ _CONDOR_SCRATCH_DIR: '/scratch/x' })).toEqual({ batchSystem: 'htcondor', batchJobId: null });
    expect(detectBatchSystem({ PBS_JOBID: '12.pbs01' })).toEqual({ batchSystem: 'pbs', batchJobId: '12.pbs01' });
    expect(detectBatchSystem({ LSB_JOBID: '555' })).toEqual({ batchSystem: 'lsf', batchJobId: '555' });
  });

  it('says local when nothing is declared or the wrapper declares the local CE', () => {
    expect(detectBatchSystem({})).toEqual({ batchSystem: 'local', batchJobId: null });
    expect(detectBatchSystem({ WMS_PILOT_CE_TYPE: 'local' })).toEqual({ batchSystem: 'local', batchJobId: null });
  });

  it('trusts a declared local CE over batch variables inherited from the server', () => {
    expect(detectBatchSystem({ WMS_PILOT_CE_TYPE: 'local', SLURM_JOB_ID: '9' }).batchSystem).toBe('local');
  });

  it('falls back to the declared CE type (e.g. a cloud VM) when no batch variable is set', () => {
    expect(detectBatchSystem({ WMS_PILOT_CE_TYPE: 'OpenNebula' }).batchSystem).toBe('opennebula');
  });
});
