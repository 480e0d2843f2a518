/**
 * Scenario `director`: one site-director cycle over many queues spread over the four CE types,
 * all with waiting work: the local CE (child processes), a real SLURM cluster (sbatch; run
 * scripts/slurm-env.sh first), the HTCondor simulator's condor_submit, and the OpenNebula
 * XML-RPC simulator. Headline: the cycle's duration; also pilots submitted per second.
 *
 * Pilots are made cheap so that they do not skew the measure: they call home to a closed port,
 * so each wrapper gives up at its first download. Each CE type gets a quarter of the queues;
 * SLURM and HTCondor queues are separate CEs (a SLURM queue is a partition, and there is one).
 * The bound, measured in the same run: the same submissions through the drivers alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BenchOptions, BenchResult } from './run.js';
import { withSystem, type BenchSystem } from './lib/system.js';
import { ComputingElements } from '../agents/computing-elements/index.js';
import { LocalComputingElement } from '../agents/computing-elements/local.js';
import { listCeQueues } from '../db/index.js';
import { OneSimulator } from '../tests/fakes/opennebula/simulator.js';

const SIZES = { smoke: { queues: 20, pilotsPerQueue: 1 }, full: { queues: 100, pilotsPerQueue: 2 } };

function partition(): string {
  const r = spawnSync('sinfo', ['-h', '-o', '%P'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`SLURM is not running (sinfo: ${(r.stderr || String(r.error)).trim()}): run scripts/slurm-env.sh`);
  return (r.stdout.split('\n')[0] ?? 'debug').trim().replace(/\*$/, '');
}

/**
 * The bound: the same queues' submissions straight through fresh drivers (a trivial wrapper, no
 * database, no tokens, no wrapper rendering), every queue at once as the director does.
 */
async function bareSubmissions(
  s: BenchSystem,
  workDir: string,
  perQueue: number,
  env: Record<string, string>,
): Promise<{ seconds: number; references: string[] }> {
  const ces = new ComputingElements({
    workDir,
    local: { name: 'localhost', driver: new LocalComputingElement({ ce: 'localhost', workDir: join(workDir, 'local'), slots: 10_000 }) },
    env,
  });
  const queues = (await listCeQueues(s.system.server.db)).filter((q) => q.maxPilotsPerCycle > 0);
  const wrapper = '#!/bin/bash\nexit 0\n';
  const t0 = performance.now();
  const answers = await Promise.all(
    queues.map(async (q) => {
      const driver = ces.driverFor({ type: q.ceType, name: q.ce, settings: q.ceSettings })!;
      const target = {
        site: q.site,
        ce: q.ce,
        queue: q.queue,
        processors: q.processors,
        ramMb: q.ramMb,
        timeLimitSeconds: 600,
        settings: { ...q.ceSettings, ...q.settings },
      };
      return driver.submit(
        target,
        Array.from({ length: perQueue }, (_, i) => ({ stamp: `bare${q.queueId}x${i}`, wrapper })),
      );
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await ces.close();
  return { seconds, references: answers.flatMap((a) => a.submitted.map((x) => x.reference)) };
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const { queues, pilotsPerQueue } = SIZES[opts.size];
  const perType = queues / 4;
  const part = partition();
  const scratch = await mkdtemp(join(tmpdir(), 'wms-bench-director-'));
  const one = new OneSimulator({ workDir: join(scratch, 'one'), user: 'wms', password: 'bench', quotaVms: 100_000 });
  const endpoint = await one.start();
  process.env['WMS_BENCH_ONE_PASSWORD'] = 'bench';
  const condorBin = resolve(import.meta.dirname, '../tests/fakes/htcondor');
  const condorEnv = {
    PATH: `${condorBin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    WMS_FAKE_CONDOR_DIR: join(scratch, 'condor'),
    WMS_FAKE_CONDOR_IDLE_MS: '100',
  };
  const limits = {
    timeLimitSeconds: 600,
    maxWaitingPilots: pilotsPerQueue,
    maxTotalPilots: pilotsPerQueue,
    maxPilotsPerCycle: pilotsPerQueue,
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const doc = {
    sites: [
      {
        name: 'Local.localhost',
        computingElements: [
          {
            name: 'localhost',
            type: 'local',
            // The system's own local queue is switched off: only the benchmark's queues count.
            queues: [
              { name: 'local', maxWaitingPilots: 0, maxTotalPilots: 0, maxPilotsPerCycle: 0 },
              ...range(perType).map((i) => ({ name: `local-${i}`, ...limits })),
            ],
          },
        ],
      },
      {
        name: 'BENCH.slurm.org',
        computingElements: range(perType).map((i) => ({ name: `slurm-${i}`, type: 'slurm', queues: [{ name: part, ...limits }] })),
      },
      {
        name: 'BENCH.condor.org',
        computingElements: range(perType).map((i) => ({ name: `condor-${i}`, type: 'htcondor', queues: [{ name: 'grid', ...limits }] })),
      },
      {
        name: 'BENCH.cloud.org',
        computingElements: [
          {
            name: 'one-bench',
            type: 'opennebula',
            settings: { endpoint, user: 'wms', password: { env: 'WMS_BENCH_ONE_PASSWORD' }, template: 'CPU = 1\nMEMORY = 128' },
            queues: range(perType).map((i) => ({ name: `vm-${i}`, ...limits })),
          },
        ],
      },
    ],
  };
  try {
    return await withSystem(
      opts.baseDbUrl,
      'director',
      { localSlots: perType * pilotsPerQueue },
      async (s) => {
        await s.api('PUT', '/api/sites', doc);
        await s.api('POST', '/api/jobs', {
          jdl: `[ Executable = "/bin/true"; Parameters = ${queues * pilotsPerQueue * 2}; ParameterStart = 1; ParameterStep = 1; CPUTime = 600; ]`,
        });
        const runner = s.system.runner!;
        const t0 = performance.now();
        const r = await runner.runOnce('site-director');
        const seconds = (performance.now() - t0) / 1000;
        const byType = await s.query<{ ce_type: string; n: number; aborted: number }>(
          `select ce_type, count(*) as n, count(*) filter (where status = 'Aborted') as aborted from pilots group by ce_type order by ce_type`,
        );
        const submitted = byType.reduce((a, x) => a + Number(x.n) - Number(x.aborted), 0);
        // The SLURM jobs of this run go (their pilots fail at once anyway).
        const bound = await bareSubmissions(s, join(scratch, 'bare'), pilotsPerQueue, condorEnv);
        const refs = await s.query<{ reference: string }>(`select reference from pilots where ce_type = 'slurm' and reference is not null`);
        const ids = [...refs.map((x) => x.reference), ...bound.references.filter((r) => r.startsWith('slurm://'))]
          .map((r) => r.split('/').pop()!)
          .filter(Boolean);
        if (ids.length > 0) spawnSync('scancel', ids);
        return {
          scenario: 'director',
          size: opts.size,
          headline: { name: 'one site-director cycle', value: Math.round(seconds * 100) / 100, unit: 's' },
          queues,
          outcome: r.outcome,
          pilotsSubmitted: submitted,
          pilotsPerSecond: Math.round((submitted / seconds) * 10) / 10,
          bound: {
            name: 'the same submissions through the drivers alone, same concurrency',
            seconds: Math.round(bound.seconds * 100) / 100,
            pilots: bound.references.length,
          },
          /** Pilots/s of the director over pilots/s of the drivers alone. */
          ratio: Math.round((bound.seconds / seconds) * 100) / 100,
          byType: Object.fromEntries(byType.map((x) => [x.ce_type, { pilots: Number(x.n), failedToSubmit: Number(x.aborted) }])),
        };
      },
      {
        config: { publicUrl: 'http://127.0.0.1:9' },
        system: { schedule: false, ceEnv: condorEnv },
      },
    );
  } finally {
    await one.close();
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
