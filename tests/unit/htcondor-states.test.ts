/**
 * HTCondor's job states and outputs turned into pilot states, against the output shapes of
 * HTCondor's tools (condor_submit -terse, condor_q / condor_history -json, JobStatus
 * and HoldReasonCode tables, DIRAC's on_exit_hold 3/55).
 */
import { describe, expect, it } from 'vitest';
import {
  CONDOR_HOLD_CODES,
  CONDOR_JOB_STATUS,
  condorAdStatus,
  condorIdOfReference,
  condorReference,
  parseJobAdsJson,
  parseSubmitTerse,
  type CondorJobAd,
} from '../../agents/computing-elements/htcondor-states.js';
import { parseHtcondorSettings, submitDescription } from '../../agents/computing-elements/htcondor.js';

const ad = (over: Partial<CondorJobAd>): CondorJobAd => ({ ClusterId: 107, ProcId: 0, ...over });

describe('condor_submit -terse', () => {
  it('expands "107.0 - 107.4" to the five procs, in order', () => {
    expect(parseSubmitTerse('107.0 - 107.4\n')).toEqual(['107.0', '107.1', '107.2', '107.3', '107.4']);
  });
  it('reads one line per cluster and a single-proc range', () => {
    expect(parseSubmitTerse('12.0 - 12.0\n13.0 - 13.1\n')).toEqual(['12.0', '13.0', '13.1']);
  });
  it('refuses output with no range (the non-terse form, an error text)', () => {
    expect(() => parseSubmitTerse('Submitting job(s)..\n2 job(s) submitted to cluster 107.\n')).toThrow(/no job range/);
    expect(() => parseSubmitTerse('')).toThrow(/no job range/);
    expect(() => parseSubmitTerse('107.0 - 108.1\n')).toThrow(/unexpected range/);
  });
});

describe('condor_q -json / condor_history -json', () => {
  it('reads empty output as no job (condor_q prints nothing, not [], when none matches)', () => {
    expect(parseJobAdsJson('')).toEqual([]);
    expect(parseJobAdsJson('\n')).toEqual([]);
  });
  it('reads an array of ads', () => {
    const out =
      '[\n{\n  "ClusterId": 107,\n  "ProcId": 0,\n  "JobStatus": 2\n}\n,\n{\n  "ClusterId": 107,\n  "ProcId": 1,\n  "JobStatus": 5,\n  "HoldReasonCode": 16,\n  "HoldReason": "Spooling input data files"\n}\n]\n';
    const ads = parseJobAdsJson(out);
    expect(ads.map((a) => [a.ClusterId, a.ProcId, a.JobStatus])).toEqual([
      [107, 0, 2],
      [107, 1, 5],
    ]);
  });
  it('skips ads without ids and refuses what is not JSON', () => {
    expect(parseJobAdsJson('[{"JobStatus": 1}]')).toEqual([]);
    expect(() => parseJobAdsJson('-- Failed to fetch ads')).toThrow(/cannot be read/);
    expect(() => parseJobAdsJson('{"ClusterId": 1}')).toThrow(/not an array/);
  });
});

describe('JobStatus to pilot state', () => {
  it('maps every documented JobStatus', () => {
    expect(condorAdStatus(ad({ JobStatus: 1 }))).toEqual({ status: 'Waiting', reason: 'idle: waiting for a slot' });
    expect(condorAdStatus(ad({ JobStatus: 2 })).status).toBe('Running');
    expect(condorAdStatus(ad({ JobStatus: 3 }))).toEqual({ status: 'Aborted', reason: 'removed' });
    expect(condorAdStatus(ad({ JobStatus: 3, RemoveReason: 'via condor_rm (by user dirac)' })).reason).toBe(
      'removed: via condor_rm (by user dirac)',
    );
    expect(condorAdStatus(ad({ JobStatus: 6 }))).toEqual({ status: 'Running', reason: 'transferring output' });
    expect(condorAdStatus(ad({ JobStatus: 7 }))).toEqual({ status: 'Unknown', reason: 'suspended on the execute node' });
    expect(condorAdStatus(ad({ JobStatus: 9 }))).toEqual({ status: 'Unknown', reason: 'JobStatus 9 (not a known code)' });
    expect(condorAdStatus(ad({})).status).toBe('Unknown');
    expect(Object.keys(CONDOR_JOB_STATUS)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
  });
  it('decides Completed by the exit code or signal', () => {
    expect(condorAdStatus(ad({ JobStatus: 4, ExitCode: 0, ExitBySignal: false }))).toEqual({
      status: 'Done',
      reason: 'exit code 0',
      exitCode: 0,
    });
    expect(condorAdStatus(ad({ JobStatus: 4, ExitCode: 3, ExitBySignal: false }))).toEqual({
      status: 'Failed',
      reason: 'exit code 3',
      exitCode: 3,
    });
    expect(condorAdStatus(ad({ JobStatus: 4, ExitBySignal: true, ExitSignal: 9 }))).toEqual({
      status: 'Failed',
      reason: 'killed by signal 9',
      exitCode: 137,
    });
  });
  it('maps held jobs: DIRAC on_exit_hold 3/55 Failed, spooling 16 Waiting, the rest Aborted with the reason', () => {
    expect(
      condorAdStatus(
        ad({
          JobStatus: 5,
          HoldReasonCode: 3,
          HoldReasonSubCode: 55,
          ExitCode: 2,
          HoldReason: "The job attribute OnExitHold expression 'ExitCode =!= 0' evaluated to TRUE",
        }),
      ),
    ).toEqual({
      status: 'Failed',
      reason: "exit code 2, held (3 JobPolicy, subcode 55): The job attribute OnExitHold expression 'ExitCode =!= 0' evaluated to TRUE",
      exitCode: 2,
    });
    expect(condorAdStatus(ad({ JobStatus: 5, HoldReasonCode: 16, HoldReasonSubCode: 0 })).status).toBe('Waiting');
    expect(condorAdStatus(ad({ JobStatus: 5, HoldReasonCode: 15 })).status).toBe('Waiting');
    expect(condorAdStatus(ad({ JobStatus: 5, HoldReasonCode: 3, HoldReasonSubCode: 1, HoldReason: 'periodic_hold' }))).toEqual({
      status: 'Aborted',
      reason: 'held (3 JobPolicy, subcode 1): periodic_hold',
    });
    expect(
      condorAdStatus(
        ad({
          JobStatus: 5,
          HoldReasonCode: 6,
          HoldReasonSubCode: 2,
          HoldReason: "Error from slot1@wn: Failed to execute '/x': (errno=2: 'No such file or directory')",
        }),
      ),
    ).toEqual({
      status: 'Aborted',
      reason:
        "held (6 FailedToCreateProcess, subcode 2): Error from slot1@wn: Failed to execute '/x': (errno=2: 'No such file or directory')",
    });
    expect(condorAdStatus(ad({ JobStatus: 5, HoldReasonCode: 46 })).reason).toBe('held (46 JobDurationExceeded)');
    expect(condorAdStatus(ad({ JobStatus: 5 }))).toEqual({ status: 'Unknown', reason: 'held without a HoldReasonCode' });
  });
  it('labels every hold code of the table (2 and 28-31 are not in it)', () => {
    const codes = Object.keys(CONDOR_HOLD_CODES).map(Number);
    expect(codes).toEqual([1, ...Array.from({ length: 25 }, (_, i) => i + 3), ...Array.from({ length: 17 }, (_, i) => i + 32)]);
  });
});

describe('references', () => {
  it('round-trips htcondorce://<ce>/<cluster>.<proc> and ignores other CEs', () => {
    expect(condorReference('ce.example.org', '107.3')).toBe('htcondorce://ce.example.org/107.3');
    expect(condorIdOfReference('htcondorce://ce.example.org/107.3', 'ce.example.org')).toBe('107.3');
    expect(condorIdOfReference('htcondorce://ce.example.org/107.3:::0123abc', 'ce.example.org')).toBe('107.3');
    expect(condorIdOfReference('htcondorce://other/107.3', 'ce.example.org')).toBeNull();
    expect(condorIdOfReference('sshslurm://ce.example.org/107', 'ce.example.org')).toBeNull();
  });
});

describe('settings and the submit description', () => {
  it('validates settings', () => {
    expect(parseHtcondorSettings('ce', {})).toEqual({
      remote: false,
      tokenKind: 'idtoken',
      submitArgs: [],
      extraSubmitLines: [],
      timeoutSeconds: 120,
    });
    expect(parseHtcondorSettings('ce', { remote: true }).tokenKind).toBe('scitoken');
    expect(() => parseHtcondorSettings('ce', { remote: 'yes' })).toThrow(/HTCondor CE ce: settings.remote/);
    expect(() => parseHtcondorSettings('ce', { extraSubmitLines: ['queue 2'] })).toThrow(/no queue statement/);
    expect(() => parseHtcondorSettings('ce', { schedd: 'a b' })).toThrow(/settings.schedd/);
  });
  it('queues one proc per stamp with DIRAC_PILOT_STAMP in its environment', () => {
    const text = submitDescription({
      workDir: '/w',
      queue: { site: 'S', ce: 'ce', queue: 'q', processors: 4, ramMb: 8000, timeLimitSeconds: 7201, settings: {} },
      stamps: ['aa', 'bb'],
      remote: false,
      extraSubmitLines: ['+Extra = 1'],
    });
    expect(text).toContain('executable = /w/$(stamp).sh\n');
    expect(text).toContain('environment = "DIRAC_PILOT_STAMP=$(stamp) HTCONDOR_JOBID=$(Cluster).$(Process)"\n');
    expect(text).toContain('request_cpus = 4\nrequest_memory = 8000\n');
    expect(text).toContain('+maxWallTime = 121\n');
    expect(text).toMatch(/\+Extra = 1\nqueue stamp in \(aa, bb\)\n$/);
  });
});
