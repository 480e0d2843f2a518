import { describe, expect, it } from 'vitest';
import {
  mapSlurmState,
  parseExitCode,
  parseSacct,
  parseSbatch,
  parseScontrol,
  parseScontrolJobs,
  parseSqueue,
  SLURM_STATES,
  slurmStateName,
} from '../../agents/computing-elements/slurm-states.js';
import { shellQuote } from '../../agents/computing-elements/command-runner.js';

// Every state SLURM documents, and the pilot state each must give.
const EXPECTED: Record<string, string> = {
  PENDING: 'Waiting',
  CONFIGURING: 'Waiting',
  RUNNING: 'Running',
  COMPLETING: 'Running',
  SUSPENDED: 'Waiting',
  STOPPED: 'Running',
  SIGNALING: 'Running',
  STAGE_OUT: 'Running',
  RESIZING: 'Running',
  REQUEUED: 'Waiting',
  REQUEUE_HOLD: 'Waiting',
  REQUEUE_FED: 'Waiting',
  RESV_DEL_HOLD: 'Waiting',
  SPECIAL_EXIT: 'Failed',
  COMPLETED: 'Done',
  FAILED: 'Failed',
  TIMEOUT: 'Failed',
  NODE_FAIL: 'Failed',
  BOOT_FAIL: 'Failed',
  OUT_OF_MEMORY: 'Failed',
  DEADLINE: 'Failed',
  CANCELLED: 'Aborted',
  PREEMPTED: 'Aborted',
  REVOKED: 'Aborted',
};

describe('SLURM state mapping', () => {
  it('covers every state name of the reference, and no other', () => {
    expect(Object.keys(SLURM_STATES).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s -> %s, by name and by compact code', (name, pilot) => {
    const byName = mapSlurmState({ state: name });
    expect(byName.status).toBe(pilot);
    expect(byName.reason).not.toBe('');
    const code = SLURM_STATES[name as keyof typeof SLURM_STATES].code;
    expect(mapSlurmState({ state: code }).status).toBe(pilot);
  });

  it('gives site admins the reason', () => {
    expect(mapSlurmState({ state: 'OUT_OF_MEMORY', reason: 'OutOfMemory' }).reason).toMatch(
      /^SLURM: OUT_OF_MEMORY \(killed for using more memory/,
    );
    expect(mapSlurmState({ state: 'TIMEOUT', exitCode: '0:15' })).toMatchObject({ status: 'Failed', exitCode: 143 });
    expect(mapSlurmState({ state: 'TIMEOUT' }).reason).toMatch(/time limit/);
    expect(mapSlurmState({ state: 'BOOT_FAIL' }).reason).toMatch(/BOOT_FAIL/);
    expect(mapSlurmState({ state: 'DEADLINE' }).reason).toMatch(/DEADLINE/);
    expect(mapSlurmState({ state: 'NODE_FAIL', reason: 'NodeDown' }).reason).toBe('SLURM: NODE_FAIL (its node failed), reason NodeDown');
    expect(mapSlurmState({ state: 'PREEMPTED' }).reason).toMatch(/preempted/);
    expect(mapSlurmState({ state: 'REQUEUED' }).reason).toMatch(/requeued/);
    expect(mapSlurmState({ state: 'SUSPENDED' }).reason).toMatch(/suspended/);
    expect(mapSlurmState({ state: 'PENDING', reason: 'JobHeldUser' })).toEqual({
      status: 'Waiting',
      reason: 'SLURM: PENDING (waiting for resources), reason JobHeldUser',
    });
    expect(mapSlurmState({ state: 'RUNNING', reason: 'None' })).toEqual({ status: 'Running', reason: 'SLURM: RUNNING (running)' });
  });

  it('reads exit codes: "exit code 3", signals, success', () => {
    expect(mapSlurmState({ state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '3:0' })).toEqual({
      status: 'Failed',
      reason: 'exit code 3',
      exitCode: 3,
    });
    expect(mapSlurmState({ state: 'FAILED', exitCode: '0:9' })).toEqual({ status: 'Failed', reason: 'killed by signal 9', exitCode: 137 });
    expect(mapSlurmState({ state: 'FAILED', reason: 'NonZeroExitCode' })).toEqual({
      status: 'Failed',
      reason: 'SLURM: FAILED (non-zero exit code or other failure), reason NonZeroExitCode',
    });
    expect(mapSlurmState({ state: 'COMPLETED', exitCode: '0:0' })).toEqual({ status: 'Done', reason: 'exit code 0', exitCode: 0 });
    expect(parseExitCode('3:0')).toEqual({ exit: 3, signal: 0 });
    expect(parseExitCode('junk')).toBeNull();
  });

  it('reads "CANCELLED by 0" (sacct) and a truncated "CANCELLED+"', () => {
    expect(mapSlurmState({ state: 'CANCELLED by 0' })).toEqual({ status: 'Aborted', reason: 'SLURM: CANCELLED by uid 0' });
    expect(mapSlurmState({ state: 'CANCELLED by 1000', exitCode: '0:15' })).toMatchObject({ status: 'Aborted', exitCode: 143 });
    expect(mapSlurmState({ state: 'CANCELLED' })).toEqual({ status: 'Aborted', reason: 'SLURM: CANCELLED' });
    expect(slurmStateName('CANCELLED+')).toBe('CANCELLED');
    expect(slurmStateName('cancelled by 0')).toBe('CANCELLED');
  });

  it('says Unknown for names it does not know, quoting them', () => {
    expect(mapSlurmState({ state: 'LAUNCH_FAILED' })).toEqual({ status: 'Unknown', reason: 'SLURM: unknown job state LAUNCH_FAILED' });
    expect(mapSlurmState({ state: '' }).status).toBe('Unknown');
    expect(slurmStateName('NOPE')).toBeNull();
  });
});

describe('SLURM output parsers', () => {
  it("squeue -h -o '%i|%T|%r': reason last, blank and malformed lines skipped", () => {
    const out = '12|RUNNING|None\n\n13|PENDING|Resources\n14_2|FAILED|NonZeroExitCode\ngarbage\n15|PENDING|odd|reason\n';
    expect(parseSqueue(out)).toEqual([
      { jobId: '12', state: 'RUNNING', reason: 'None' },
      { jobId: '13', state: 'PENDING', reason: 'Resources' },
      { jobId: '14_2', state: 'FAILED', reason: 'NonZeroExitCode' },
      { jobId: '15', state: 'PENDING', reason: 'odd|reason' },
    ]);
    expect(parseSqueue('')).toEqual([]);
  });

  it('scontrol show job -o: key=value pairs, values with spaces kept whole', () => {
    const line =
      'JobId=7 JobName=wms-abc UserId=root(0) GroupId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 ' +
      'AllocNode:Sid=localhost:15989 CPUs/Task=1 ReqB:S:C:T=0:0:*:* Command=(null) WorkDir=/tmp/a dir StdErr=/tmp/x.err StdIn=/dev/null StdOut=/tmp/x.out Power=';
    const [job] = parseScontrolJobs(line + '\n');
    expect(job).toMatchObject({
      JobId: '7',
      JobState: 'FAILED',
      ExitCode: '3:0',
      'AllocNode:Sid': 'localhost:15989',
      'CPUs/Task': '1',
      'ReqB:S:C:T': '0:0:*:*',
      WorkDir: '/tmp/a dir',
      StdOut: '/tmp/x.out',
      Power: '',
    });
    expect(parseScontrol(line)).toEqual([{ jobId: '7', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '3:0' }]);
    expect(parseScontrol('slurm_load_jobs error: Invalid job id specified\n')).toEqual([]);
  });

  it('sacct -X -n -P -o JobID,State,ExitCode', () => {
    expect(parseSacct('1|FAILED|3:0\n2|CANCELLED by 0|0:15\n3|COMPLETED|0:0\n\n')).toEqual([
      { jobId: '1', state: 'FAILED', exitCode: '3:0' },
      { jobId: '2', state: 'CANCELLED by 0', exitCode: '0:15' },
      { jobId: '3', state: 'COMPLETED', exitCode: '0:0' },
    ]);
  });

  it('sbatch --parsable: jobid or jobid;cluster', () => {
    expect(parseSbatch('42\n')).toEqual({ jobId: '42' });
    expect(parseSbatch('42;cluster1\n')).toEqual({ jobId: '42', cluster: 'cluster1' });
    expect(() => parseSbatch('')).toThrow(/sbatch printed no job id/);
    expect(() => parseSbatch('Submitted batch job 42')).toThrow(/no job id: "Submitted batch job 42"/);
  });
});

describe('shellQuote', () => {
  it('leaves safe words alone and single-quotes the rest', () => {
    expect(shellQuote('--partition=debug')).toBe('--partition=debug');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('$HOME;rm')).toBe("'$HOME;rm'");
  });
});
