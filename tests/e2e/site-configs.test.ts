/**
 * Every file shipped in site-configs/ is applied as a site admin would (`wms site apply FILE`)
 * while the system runs, and gets a pilot for a job sent to its site: the files are not edited,
 * their endpoints are pointed at what runs here with `--set PATH=VALUE` (documented in
 * site-configs/README.md):
 * - slurm.yaml: the login node is a local sshd (`startSshd`) in front of the real single-node
 *   SLURM, its partition the cluster's default, and the second queue (a partition this cluster
 *   does not have) and the account removed;
 * - htcondor.yaml: the HTCondor simulator's commands on the agents' PATH, the token in the
 *   variable the file names;
 * - opennebula.yaml: the endpoint is the OpenNebula simulator, with the template the file's
 *   queue names (its `templateId` is under the queue: a CE-only reading of it never worked);
 * - local.yaml: this machine, as shipped.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Io } from '../../cli/command.js';
import { formatError } from '../../cli/errors.js';
import { run } from '../../cli/program.js';
import { TokenSigner } from '../../services/token-signer.js';
import { OneSimulator } from '../fakes/opennebula/simulator.js';
import { FAKE_CONDOR_BIN } from '../helpers/htcondor.js';
import { defaultPartition, describeSsh, startSshd, type TestSshd } from '../helpers/slurm.js';
import { describeSystem, waitUntil, type SystemCtx } from '../helpers/system.js';

const examples = resolve(import.meta.dirname, '../../site-configs');
const ce = 'sites[0].computingElements[0]';

// The secrets the shipped files name, in the agents' environment (this process), as a site's would be.
process.env['JINR_ONE_PASSWORD'] = 'e2e-one';
process.env['INP_CE_TOKEN'] = 'e2e-token';

/** The site of each shipped file, and the VO its queues serve (none: any). */
const SITES: Record<string, { site: string; vo?: string }> = {
  'local.yaml': { site: 'Local.localhost' },
  'slurm.yaml': { site: 'LCG.JINR.ru', vo: 'jinr' },
  'htcondor.yaml': { site: 'LCG.INP.kz', vo: 'jinr' },
  'opennebula.yaml': { site: 'CLOUD.JINR-ONE.ru', vo: 'jinr' },
};

const condorState = await mkdtemp(join(tmpdir(), 'wms-e2e-site-configs-condor-'));

describeSsh('every shipped site config', () => {
  let sshd: TestSshd;
  let one: OneSimulator;
  let endpoint = '';
  beforeAll(async () => {
    sshd = await startSshd();
    one = new OneSimulator({
      workDir: await mkdtemp(join(tmpdir(), 'wms-e2e-site-configs-one-')),
      user: 'wms-pilots',
      password: 'e2e-one',
      templates: { 1234: 'CPU = 1\nMEMORY = 512' },
    });
    endpoint = await one.start();
  });
  afterAll(async () => {
    await one?.close();
    await sshd?.stop();
  });

  /** The `--set` overrides that point each file at what runs here. */
  const overrides = (file: string): string[] =>
    ({
      'slurm.yaml': [
        `${ce}.settings.host=${sshd.host}`,
        `${ce}.settings.port=${sshd.port}`,
        `${ce}.settings.user=${sshd.user}`,
        `${ce}.settings.privateKey.file=${sshd.keyFile}`,
        `${ce}.settings.account=null`,
        `${ce}.queues[1]=null`,
        `${ce}.queues[0].name=${defaultPartition()}`,
      ],
      'opennebula.yaml': [`${ce}.settings.endpoint=${endpoint}`],
    })[file] ?? [];

  async function apply(sys: SystemCtx, file: string): Promise<void> {
    const lines: string[] = [];
    const io: Io = {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
      env: { WMS_URL: sys.url, WMS_TOKEN: await sys.adminToken() },
      cwd: sys.dataDir,
      home: sys.dataDir,
    };
    const args = ['site', 'apply', join(examples, file), ...overrides(file).flatMap((o) => ['--set', o])];
    const code = await run(args, io).catch((e: unknown) => (lines.push(...formatError(e)), 1));
    expect(code, lines.join('\n')).toBe(0);
  }

  describeSystem(
    'applied while the system runs',
    (sys) => {
      it('each gets a pilot for a job sent to its site', async () => {
        const files = (await readdir(examples)).filter((f) => f.endsWith('.yaml')).sort();
        expect(files).toEqual(Object.keys(SITES).sort());
        for (const f of files) await apply(sys, f);

        const signer = await TokenSigner.open(sys.system.server.db, { issuer: 'pilot-wms' });
        for (const f of files) {
          const { site, vo = 'vo' } = SITES[f]!;
          const token = (await signer.sign({ role: 'user', user: 'tester', vo, group: `${vo}_user` }, 3600)).token;
          await sys.submit(`[ Executable = "/bin/true"; Site = "${site}"; CPUTime = 600; ]`, token);
        }

        const pilotsBySite = await waitUntil(
          'a submitted pilot at every site',
          async () => {
            const { pilots } = await sys.api<{ pilots: { site: string; reference: string | null }[] }>('GET', '/api/pilots');
            const bySite = new Set(pilots.filter((p) => p.reference).map((p) => p.site));
            return Object.values(SITES).every((s) => bySite.has(s.site)) ? bySite : null;
          },
          90_000,
          250,
        ).catch(async (e: unknown) => {
          const { queues } = await sys.api<{ queues: { site: string; queue: string; pauseReason: string | null }[] }>('GET', '/api/sites');
          throw new Error(`${(e as Error).message}; queues: ${JSON.stringify(queues)}`, { cause: e });
        });
        expect([...pilotsBySite].sort()).toEqual(
          Object.values(SITES)
            .map((s) => s.site)
            .sort(),
        );
        expect(one.calls.some((c) => c.method === 'one.template.instantiate')).toBe(true);
      });
    },
    {
      ceEnv: {
        PATH: `${FAKE_CONDOR_BIN}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
        WMS_FAKE_CONDOR_DIR: condorState,
        WMS_FAKE_CONDOR_IDLE_MS: '100',
      },
    },
  );
});
