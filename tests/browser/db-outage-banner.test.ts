/**
 * The dashboard in Chromium through a real PostgreSQL outage (a private cluster, never the
 * shared server): while the services answer 503 WMS_DB_UNAVAILABLE the page shows the banner
 * "database unavailable, retrying" and keeps its last data; when the database is back the
 * banner goes away by itself and the page loads again, without a reload.
 * Screenshot: test-output/screenshots/db-outage-banner.png.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSystem, type RunningSystem } from '../../cli/server-system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';
import { PgCluster, pgClusterProblem } from '../helpers/pg-cluster.js';
import { BUNDLE_DIR, fastConfig } from '../helpers/system.js';

const problem = pgClusterProblem();
if (problem && process.env['CI']) throw new Error(`this test needs a private PostgreSQL cluster: ${problem}`);
if (problem) console.warn(`SKIPPED db-outage-banner: ${problem}`);

describeBrowser('dashboard through a database outage', () => {
  let cluster: PgCluster;
  let system: RunningSystem;
  let dataDir: string;
  const browser = useBrowser();

  beforeAll(async () => {
    if (problem) return;
    cluster = await PgCluster.create();
    const url = await cluster.createDatabase('outage_banner');
    dataDir = await mkdtemp(join(tmpdir(), 'wms-banner-'));
    system = await startSystem(fastConfig(dataDir, url, { localSite: false, agents: false }), {
      pilotBundleDir: BUNDLE_DIR,
      logger: false,
    });
  });

  afterAll(async () => {
    await system?.close();
    await cluster?.destroy();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(problem !== null)(
    'shows "database unavailable, retrying" while the database is down, and removes it once it is back',
    async () => {
      const { page } = browser;
      const base = system.server.url;
      const admin = (await readFile(system.server.adminTokenPath, 'utf8')).trim();
      await page.goto(base + '/jobs');
      await page.getByLabel('Token').fill(admin);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      const banner = page.getByTestId('db-banner');
      expect(await banner.count()).toBe(0);

      await cluster.stop('fast');
      await banner.waitFor({ timeout: 30_000 });
      expect(await banner.textContent()).toContain('database unavailable, retrying');
      // The page is still there with its last data; no error page instead of it.
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
      await screenshot(page, 'db-outage-banner');

      await cluster.start();
      await banner.waitFor({ state: 'detached', timeout: 30_000 });
      // Answers work again: a job submitted now shows up in the list, without a reload.
      const res = await fetch(base + '/api/jobs', {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jdl: '[ Executable = "/bin/true"; JobName = "after-outage"; CPUTime = 100; ]' }),
      });
      expect(res.status).toBe(201);
      await page.getByText('after-outage').first().waitFor({ timeout: 30_000 });
      expect(await banner.count()).toBe(0);
    },
  );
});
