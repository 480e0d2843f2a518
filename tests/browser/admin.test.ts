/**
 * The dashboard's Sites, Pilots and Usage pages in real headless Chromium against a whole
 * system (PGlite and PostgreSQL): a site admin bans a site of its token (and gets no Ban button
 * for the local site) and the Sites page shows it banned
 * with the reason, on a second open page too without a reload (the `sites` event stream); a
 * user cannot see another user's jobs; the Pilots page lists the pilot that ran a job and its
 * page shows the environment and the remote log; the Usage page shows each group's share against
 * its use, jobs and CPU per group and user, the week's jobs and normalized CPU per site and group,
 * an admin edits a share there and a user sees only their group and themselves. Screenshots:
 * test-output/screenshots/<driver>-<page>.png.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

const HELLO = await readFile(join(import.meta.dirname, '../../examples/hello.jdl'), 'utf8');
const SITE = 'TEST.Banme.org';

describeBrowser('admin pages in Chromium', () => {
  describeSystem('admin pages', (sys) => {
    const browser = useBrowser();

    it('a site admin bans a site: it shows banned with the reason, on a second page without reload', async () => {
      await sys.api('PUT', '/api/sites', {
        sites: [
          {
            name: SITE,
            computingElements: [
              {
                name: 'banme-ce',
                type: 'local',
                queues: [{ name: 'q', timeLimitSeconds: 3600, maxWaitingPilots: 1, maxTotalPilots: 1, maxPilotsPerCycle: 1 }],
              },
            ],
          },
        ],
      });
      const issued = await sys.api<{ token: string }>('POST', '/api/tokens', {
        user: 'sam',
        vo: 'vo',
        group: 'vo_site',
        role: 'site-admin',
        sites: [SITE],
      });
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
        // Ban / Allow only on the sites of the token: none on the local site (admins only).
        expect(await page.getByRole('button', { name: `Ban site ${SITE}` }).count()).toBe(1);
        expect(await page.getByRole('button', { name: 'Ban site Local.localhost' }).count()).toBe(0);
        expect(await page.getByRole('button', { name: 'Ban CE localhost' }).count()).toBe(0);
        await screenshot(page, `${browser.tag}-sites`);

        await page.getByRole('button', { name: `Ban site ${SITE}` }).click();
        await page.getByLabel(`Reason for banning site ${SITE}`).fill('downtime for the storage upgrade');
        await page.getByRole('button', { name: 'Confirm ban' }).click();
        await expect.poll(() => page.getByTestId(`site-state-${SITE}`).textContent()).toBe('banned: downtime for the storage upgrade');
        await expect
          .poll(() => other.getByTestId(`site-state-${SITE}`).textContent(), { timeout: 10_000 })
          .toBe('banned: downtime for the storage upgrade');
        expect(await other.evaluate('window.__wmsNoReload')).toBe(7);
        const queues = (await sys.api<{ queues: { site: string; siteBanned: boolean; siteBanReason: string }[] }>('GET', '/api/sites'))
          .queues;
        expect(queues.find((q) => q.site === SITE)).toMatchObject({ siteBanned: true, siteBanReason: 'downtime for the storage upgrade' });
        await screenshot(page, `${browser.tag}-sites-banned`);

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
      await page
        .getByTestId('jobs')
        .getByRole('link', { name: String(bobs), exact: true })
        .waitFor();
      const ids = await page.getByTestId('jobs').locator('tbody tr td:first-child').allTextContents();
      expect(ids).toContain(String(bobs));
      expect(ids).not.toContain(String(alices));
      const ownerColumn = (await page.getByTestId('jobs').locator('thead th').allTextContents()).indexOf('Owner') + 1;
      expect(ownerColumn).toBeGreaterThan(0);
      expect(await page.getByTestId('jobs').locator(`tbody tr td:nth-child(${ownerColumn})`).allTextContents()).toEqual(
        ids.map(() => 'bob'),
      );
      await page.goto(`${sys.url}/jobs/${alices}`);
      await page.getByRole('alert').filter({ hasText: 'not found' }).waitFor();
      expect(await page.getByRole('alert').textContent()).toBe(`Job ${alices}: not found`);
      await screenshot(page, `${browser.tag}-job-not-found`);
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
      await page
        .getByTestId('pilots')
        .getByRole('link', { name: String(pilotId), exact: true })
        .waitFor();
      await screenshot(page, `${browser.tag}-pilots`);
      await page
        .getByTestId('pilots')
        .getByRole('link', { name: String(pilotId), exact: true })
        .click();
      await page.waitForURL(new RegExp(`/pilots/${pilotId}$`));
      const env = page.getByTestId('environment');
      await env.waitFor();
      for (const label of [
        'OS',
        'CPU',
        'Cores',
        'Memory',
        'Work dir',
        'File system',
        'Disk free',
        'Clock offset',
        'DB12',
        'Node',
        'Batch system',
      ]) {
        expect(await env.textContent()).toContain(label);
      }
      expect(await env.textContent()).toMatch(/Nodev\d+\./);
      await expect.poll(async () => Number(await page.getByTestId('jobs-run').textContent())).toBeGreaterThanOrEqual(1);
      await expect.poll(() => page.getByTestId('pilot-log').textContent(), { timeout: 30_000 }).not.toBe('No log lines yet.');
      await screenshot(page, `${browser.tag}-pilot`);
    });

    it('the Usage page shows shares against use and the week per site and group; an admin edits a share; a user sees only theirs', async () => {
      // Accounting records as the agent writes them (no foreign key to jobs): one of alice's group
      // in the last day, one of carol's group (vo_prod) three days ago, on a site of their own.
      const ago = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString();
      for (const [id, owner, group, status, hours, cpu, normalized] of [
        [900001, 'alice', 'vo_user', 'Done', 2, 3600, 36_000],
        [900002, 'carol', 'vo_prod', 'Failed', 72, 1800, 108_000],
      ] as const) {
        await sys.system.server.db.query(
          `insert into accounting (job_id, owner, owner_group, vo, site, status, submitted_at, ended_at, cpu_seconds, normalized_cpu_seconds)
           values ($1, $2, $3, 'vo', 'TEST.Usage.org', $4::job_status, $5::timestamptz, $5::timestamptz, $6, $7)`,
          [id, owner, group, status, ago(hours), cpu, normalized],
        );
      }
      const { page } = browser;
      await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');
      await page.getByRole('link', { name: 'Usage' }).click();
      await page.getByRole('heading', { name: 'Quotas and usage' }).waitFor();

      // Per group: vo_user and vo_prod are the active groups of VO "vo", default shares: 50 % each.
      const groups = page.getByTestId('usage-groups');
      const row = (group: string) => groups.locator('tbody tr').filter({ has: page.getByRole('cell', { name: group, exact: true }) });
      await row('vo_prod').waitFor();
      expect(await row('vo_prod').locator('td').allTextContents()).toEqual(
        expect.arrayContaining(['vo', 'vo_prod', '50 %', '0', '0 s', '30.0 min', '108K DB12·s']),
      );
      expect(await row('vo_user').locator('td').nth(3).textContent()).toBe('50 %');
      expect(await page.getByTestId('share-vo/vo_prod').textContent()).toBe('1000 (default)');
      await expect.poll(() => page.getByTestId('share-vs-used').textContent()).toContain('vo/vo_prod');
      await page.getByTestId('load-groups').waitFor();
      expect(await page.getByTestId('usage-users').textContent()).toContain('carol');
      await page.getByTestId('load-users').waitFor();
      await page.getByTestId('cpu-user-7d').getByText('carol (vo_prod)', { exact: true }).waitFor();

      // The week's accounting: jobs done and failed per site, normalized CPU per site and group.
      await expect.poll(() => page.getByTestId('jobs-site-7d').textContent()).toContain('TEST.Usage.org');
      expect(await page.getByTestId('jobs-site-7d').textContent()).toContain('1 done · 1 failed');
      await expect.poll(() => page.getByTestId('norm-site-7d').textContent()).toContain('TEST.Usage.org');
      await expect.poll(() => page.getByTestId('norm-group-7d').textContent()).toContain('vo_prod: 108K DB12·s');

      // An admin edits vo_prod's share: 3000 against 1000 is 75 %.
      await page.getByRole('button', { name: 'Edit share of vo/vo_prod' }).click();
      await page.getByLabel('Share of vo/vo_prod').fill('0');
      expect(await page.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
      await page.getByLabel('Share of vo/vo_prod').fill('3000');
      await page.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => page.getByTestId('share-vo/vo_prod').textContent()).toBe('3000');
      await expect.poll(() => row('vo_prod').locator('td').nth(3).textContent()).toBe('75 %');
      expect(await row('vo_user').locator('td').nth(3).textContent()).toBe('25 %');
      const shares = await sys.api<{ shares: { vo: string; group: string; share: number; configured: boolean }[] }>('GET', '/api/shares');
      expect(shares.shares).toContainEqual({ vo: 'vo', group: 'vo_prod', share: 3000, configured: true });
      await screenshot(page, `${browser.tag}-usage`);

      // A user sees their group and themselves, and no Edit.
      await signIn(page, sys.url, await sys.token('alice'), 'alice (user');
      await page.getByRole('link', { name: 'Usage' }).click();
      await row('vo_user').waitFor();
      expect(await groups.locator('tbody tr').count()).toBe(1);
      expect(await row('vo_user').locator('td').nth(3).textContent()).toBe('25 %');
      expect(await page.getByTestId('usage-users').locator('tbody td:nth-child(3)').allTextContents()).toEqual(['alice']);
      expect(await page.getByRole('button', { name: /^Edit share/ }).count()).toBe(0);
      await screenshot(page, `${browser.tag}-usage-user`);
    });
  });
});
