/**
 * The hello JDL reaches Done through a pilot started by each remote CE type, on PGlite and on
 * PostgreSQL, with the local site off (so the job can only run there): a real SLURM cluster,
 * the HTCondor simulator's commands, the OpenNebula XML-RPC simulator. Each site is registered
 * with `PUT /api/sites` (what `wms site apply` sends) while the system runs.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSystem, type SystemCtx } from '../helpers/system.js';
import { defaultPartition, describeSlurm } from '../helpers/slurm.js';
import { FAKE_CONDOR_BIN } from '../helpers/htcondor.js';
import { OneSimulator } from '../fakes/opennebula/simulator.js';
import type { Io } from '../../cli/command.js';
import { formatError } from '../../cli/errors.js';
import { run } from '../../cli/program.js';
import { waitUntil } from '../helpers/system.js';

const HELLO = await readFile(join(import.meta.dirname, '../../examples/hello.jdl'), 'utf8');

/** Registers one site with one CE of `type` and one queue, as a site admin would. */
async function register(
  sys: SystemCtx,
  name: string,
  type: string,
  settings: Record<string, unknown>,
  queue: string,
  queueSettings: Record<string, unknown> = {},
) {
  const doc = {
    sites: [
      {
        name: `TEST.${name}.org`,
        computingElements: [
          {
            name: `${name}-ce`,
            type,
            settings,
            queues: [
              {
                name: queue,
                timeLimitSeconds: 3600,
                maxWaitingPilots: 1,
                maxTotalPilots: 2,
                maxPilotsPerCycle: 1,
                settings: queueSettings,
              },
            ],
          },
        ],
      },
    ],
  };
  await sys.api('PUT', '/api/sites', doc);
}

/** Submits hello, waits for Done, and answers the pilot that ran it. */
async function helloThrough(sys: SystemCtx, ceType: string): Promise<{ reference: string }> {
  const [id] = await sys.submit(HELLO);
  const job = await sys.waitForStatus(id!, ['Done', 'Failed'], 120_000);
  expect(job.status).toBe('Done');
  const pilot = await sys.api('GET', `/api/pilots/${job.pilotId}`);
  expect(pilot.ceType).toBe(ceType);
  return pilot;
}

describeSlurm('end to end through SLURM', () => {
  describeSystem(
    'hello through a pilot SLURM started',
    (sys) => {
      it('reaches Done', async () => {
        await register(sys, 'slurm', 'slurm', {}, defaultPartition());
        const pilot = await helloThrough(sys, 'slurm');
        expect(pilot.reference).toMatch(/^slurm:\/\/slurm-ce\/\d+$/);
      });
    },
    { config: { localSite: false } },
  );
});

const condorState = await mkdtemp(join(tmpdir(), 'wms-e2e-condor-'));

describeSystem(
  'hello through a pilot the HTCondor simulator started',
  (sys) => {
    it('reaches Done', async () => {
      await register(sys, 'condor', 'htcondor', { schedd: 'condor-ce.test' }, 'grid');
      const pilot = await helloThrough(sys, 'htcondor');
      expect(pilot.reference).toMatch(/^htcondorce:\/\/condor-ce\/\d+\.\d+$/);
    });
  },
  {
    config: { localSite: false },
    ceEnv: {
      PATH: `${FAKE_CONDOR_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      WMS_FAKE_CONDOR_DIR: condorState,
      WMS_FAKE_CONDOR_IDLE_MS: '100',
    },
  },
);

// The simulator's password reaches the driver the way a site's does: through an environment
// variable named in the registry, never the registry itself.
process.env['WMS_E2E_ONE_PASSWORD'] = 'e2e-secret';

describeSystem(
  'an OpenNebula site registered while the system runs',
  (sys) => {
    it('gets pilots within one site-director cycle, and hello reaches Done in a "VM"', async () => {
      const one = new OneSimulator({ workDir: await mkdtemp(join(tmpdir(), 'wms-e2e-one-')), user: 'wms', password: 'e2e-secret' });
      const endpoint = await one.start();
      try {
        const [id] = await sys.submit(HELLO);
        // Nothing can run it yet (the local site is off): no pilot anywhere.
        await new Promise((r) => setTimeout(r, 1500));
        expect((await sys.api('GET', '/api/pilots')).pilots).toEqual([]);

        const file = join(sys.dataDir, 'cloud.yaml');
        await writeFile(
          file,
          [
            'sites:',
            '  - name: CLOUD.E2E.org',
            '    computingElements:',
            '      - name: one-e2e',
            '        type: opennebula',
            '        settings:',
            `          endpoint: ${endpoint}`,
            '          user: wms',
            '          password: { env: WMS_E2E_ONE_PASSWORD }',
            '          template: "CPU = 1\\nMEMORY = 512"',
            '        queues:',
            '          - name: small',
            '            timeLimitSeconds: 3600',
            '            maxWaitingPilots: 1',
            '            maxTotalPilots: 1',
            '            maxPilotsPerCycle: 1',
            '',
          ].join('\n'),
        );
        const out: string[] = [];
        const io: Io = {
          out: (l) => out.push(l),
          err: (l) => out.push(l),
          env: { WMS_URL: sys.url, WMS_TOKEN: await sys.adminToken() },
          cwd: sys.dataDir,
          home: sys.dataDir,
        };
        const code = await run(['site', 'apply', file], io).catch((e: unknown) => (out.push(...formatError(e)), 1));
        expect(out.join('\n')).toMatch(/1 queue\(s\) created/);
        expect(code).toBe(0);
        const appliedAt = Date.now();

        // The next site-director tick that starts after the apply sends a pilot there.
        const runner = sys.system.runner!;
        await waitUntil(
          'a site-director tick after the apply',
          async () => {
            const t = runner.lastTicks().get('site-director');
            return t && t.at.getTime() > appliedAt;
          },
          10_000,
          50,
        );
        const { pilots } = await sys.api('GET', '/api/pilots');
        expect(pilots.map((p: { ce: string; ceType: string }) => [p.ce, p.ceType])).toEqual([['one-e2e', 'opennebula']]);
        expect(pilots[0].reference).toMatch(/^cloud:\/\/one-e2e\/\d+$/);

        const job = await sys.waitForStatus(id!, ['Done', 'Failed'], 120_000);
        expect(job.status).toBe('Done');
        expect(job.pilotId).toBe(pilots[0].id);
        expect(one.calls.some((c) => c.method === 'one.vm.allocate')).toBe(true);
      } finally {
        await one.close();
      }
    });
  },
  { config: { localSite: false } },
);
