/**
 * The dashboard's Sites, Pilots and Usage pages in real headless Chromium against a whole
 * system (PGlite and PostgreSQL): a site admin bans a site and the Sites page shows it banned
 * with the reason, on a second open page too without a reload (the `sites` event stream); a
 * user cannot see another user's jobs; the Pilots page lists the pilot that ran a job and its
 * page shows the environment and the remote log. Screenshots:
 * test-output/screenshots/<driver>-<page>.png.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';

const HELLO = await readFile(join(import.meta.dirname, '../../examples/hello.jdl'), 'utf8');
const SITE = 'TEST.Banme.org';

async function signIn(page: Page, url: string, token: string, who: string): Promise<void> {
  await page.goto(url + '/jobs');
  await page.evaluate('sessionStorage.clear()');
  await page.reload();
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('identity').textContent()).toContain(who);
}

describeBrowser('admin pages in Chromium', () => {
  describeSystem('admin pages', (sys) => {
    let browser: BrowserSession;
    let tag = 'system';

    beforeAll(async () => {
      browser = await openBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('a site admin bans a site: it shows banned with the reason, on a second page without reload', async () => {
      tag = /\[(\w+)\]/.exec(expect.getState().currentTestName ?? '')?.[1] ?? tag;
      await sys.api('PUT', '/api/sites', {
        sites: [
          {
            name: SITE,
            computingElements: [
              { name: 'banme-ce', type: 'local', queues: [{ name: 'q', timeLimitSeconds: 3600, maxWaitingPilots: 1, maxTotalPilots: 1, maxPilotsPerCycle: 1 }] },
            ],
          },
        ],
      });
      const issued = await sys.api<{ token: string }>('POST', '/api/tokens', { user: 'sam', vo: 'vo', group: 'vo_site', role: 'site-admin' });
      const { page } = browser;
      const other = await browser.context.newPage();
      try {
        await signIn(page, sys.url, issued.token, 'sam (site-admin');
        await signIn(other, sys.url, issued.token, 'sam (site-admin');
        for (const p of [page, other]) {
          await p.getByRole('link', { name: 'Sites' }).click();
          await expect.poll(() => p.getByTestId(`site-state-${SITE}`).textContent()).toBe('ok');
          await expect.poll(() => p.getByTestId('stream').textContent()).toBe('live');
        }
        await other.evaluate('window.__wmsNoReload = 7');
        await screenshot(page, `${tag}-sites`);

        await page.getByRole('button', { name: `Ban site ${SITE}` }).click();
        await page.getByLabel(`Reason for banning site ${SITE}`).fill('downtime for the storage upgrade');
        await page.getByRole('button', { name: 'Confirm ban' }).click();
        await expect
          .poll(() => page.getByTestId(`site-state-${SITE}`).textContent())
          .toBe('banned: downtime for the storage upgrade');
        await expect
          .poll(() => other.getByTestId(`site-state-${SITE}`).textContent(), { timeout: 10_000 })
          .toBe('banned: downtime for the storage upgrade');
        expect(await other.evaluate('window.__wmsNoReload')).toBe(7);
        const queues = (await sys.api<{ queues: { site: string; siteBanned: boolean; siteBanReason: string }[] }>('GET', '/api/sites')).queues;
        expect(queues.find((q) => q.site === SITE)).toMatchObject({ siteBanned: true, siteBanReason: 'downtime for the storage upgrade' });
        await screenshot(page, `${tag}-sites-banned`);

        await other.getByRole('button', { name: `Allow site ${SITE}` }).click();
        await expect.poll(() => page.getByTestId(`site-state-${SITE}`).textContent(), { timeout: 10_000 }).toBe('ok');
      } finally {
        await other.close();
      }
    });

    it("a user cannot see another user's jobs", async () => {
      const [alices] = await sys.submit(HELLO, await sys.token('alice'));
      const [bobs] = await sys.submit(HELLO, await sys.token('bob'));
      const { page } = browser;
      await signIn(page, sys.url, await sys.token('bob'), 'bob (user');
      await page.getByTestId('jobs').getByRole('link', { name: String(bobs), exact: true }).waitFor();
      const ids = await page.getByTestId('jobs').locator('tbody tr td:first-child').allTextContents();
      expect(ids).toContain(String(bobs));
      expect(ids).not.toContain(String(alices));
      expect(await page.getByTestId('jobs').locator('tbody tr td:nth-child(6)').allTextContents()).toEqual(ids.map(() => 'bob'));
      await page.goto(`${sys.url}/jobs/${alices}`);
      await page.getByRole('alert').filter({ hasText: 'not found' }).waitFor();
      expect(await page.getByRole('alert').textContent()).toBe(`Job ${alices}: not found`);
      await screenshot(page, `${tag}-job-not-found`);
      await page.goto(`${sys.url}/jobs/${bobs}`);
      await expect.poll(() => page.getByTestId('stream').textContent()).toBe('live');
    });

    it('the Pilots page lists the pilot that ran a job; its page shows the environment and the log', async () => {
      const [id] = await sys.submit(HELLO, await sys.token('alice'));
      const job = await sys.waitForStatus(id!, ['Done'], 90_000);
      const pilotId = job.pilotId as number;
      expect(pilotId).toBeGreaterThan(0);
      const { page } = browser;
      await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');

      await page.getByRole('link', { name: 'Pilots' }).click();
      await page.getByTestId('pilots').getByRole('link', { name: String(pilotId), exact: true }).waitFor();
      await screenshot(page, `${tag}-pilots`);
      await page.getByTestId('pilots').getByRole('link', { name: String(pilotId), exact: true }).click();
      await page.waitForURL(new RegExp(`/pilots/${pilotId}$`));
      const env = page.getByTestId('environment');
      await env.waitFor();
      for (const label of ['OS', 'CPU', 'Cores', 'Memory', 'Work dir', 'File system', 'Disk free', 'Clock offset', 'DB12', 'Node', 'Batch system']) {
        expect(await env.textContent()).toContain(label);
      }
      expect(await env.textContent()).toMatch(/Nodev\d+\./);
      await expect.poll(async () => Number(await page.getByTestId('jobs-run').textContent())).toBeGreaterThanOrEqual(1);
      await expect.poll(() => page.getByTestId('pilot-log').textContent(), { timeout: 30_000 }).not.toBe('No log lines yet.');
      await screenshot(page, `${tag}-pilot`);

      await page.getByRole('link', { name: 'Usage' }).click();
      await page.getByRole('heading', { name: 'Quotas and usage' }).waitFor();
      await page.getByTestId('load-users').waitFor();
      await screenshot(page, `${tag}-usage`);
    });
  });
});
