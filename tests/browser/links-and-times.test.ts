/**
 * Links between pages and times that say their zone, in real headless Chromium against a
 * whole system (PGlite and PostgreSQL) whose local site runs a job, the browser in the zone
 * Asia/Kolkata (+05:30 all year: an offset that is not whole hours):
 * - the job page links its pilot, its site (the Sites page at that site) and its job group (the
 *   jobs page filtered by it); the pilot page links its site, its CE and the site's jobs, and
 *   once the pilot is Done calls the job its last, not its current; the Sites page links a
 *   site's jobs (the jobs page filtered by site) and pilots; a user, who may not read pilots,
 *   sees the pilot id as text, not as a link to a refusal;
 * - every time on the job page is local with its offset and a date, the same instant in UTC
 *   (as the CLI prints it) on hover; durations read as people read them.
 * Screenshots: test-output/screenshots/<driver>-links-*.png.
 */
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

const GROUP = 'links-group';
const JDL = `[ JobName = "linked"; JobGroup = "${GROUP}"; Executable = "/bin/echo"; Arguments = "hi"; CPUTime = 600; ]`;
const LOCAL = 'Local.localhost';
const ZONE = 'Asia/Kolkata';

/** `2026-12-04T09:50:03.000Z` as the page shows it in Asia/Kolkata: `2026-12-04 15:20:03 +05:30`. */
function kolkata(iso: string): string {
  return new Date(Date.parse(iso) + 5.5 * 3600_000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' +05:30');
}

/** `2026-12-04T09:50:03.000Z` in UTC as the CLI prints it: `2026-12-04 09:50:03Z`. */
function utc(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

describeBrowser('links and times in Chromium', () => {
  describeSystem('links and times', (sys) => {
    const browser = useBrowser();
    let jobId = 0;
    let pilotId = 0;

    it('the job page links its pilot, site and group; the pilot and Sites pages link on; a Done pilot has no current job', async () => {
      const alice = await sys.token('alice');
      [jobId] = (await sys.submit(JDL, alice)) as [number];
      const job = await sys.waitForStatus(jobId, ['Done'], 90_000);
      pilotId = job.pilotId as number;
      expect(pilotId).toBeGreaterThan(0);
      const { page } = browser;
      await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');

      // Job → pilot.
      await page.goto(`${sys.url}/jobs/${jobId}`);
      await expect.poll(() => page.getByTestId('job-status').textContent()).toBe('Done');
      expect(await page.getByTestId('job-site').textContent()).toBe(LOCAL);
      await screenshot(page, `${browser.tag}-links-job`);
      const pilotLink = page.getByTestId('job-pilot');
      expect(await pilotLink.textContent()).toBe(String(pilotId));
      await pilotLink.click();
      await page.waitForURL(new RegExp(`/pilots/${pilotId}$`));
      expect(await page.getByTestId('pilot-site').textContent()).toBe(LOCAL);
      expect(await page.getByTestId('pilot-ce').getAttribute('href')).toBe('/sites#ce-localhost');
      expect(await page.getByTestId('pilot-site-jobs').getAttribute('href')).toBe(`/jobs?site=${LOCAL}`);
      // Done: the job it ran is its last, never its "current" job.
      await expect.poll(() => page.getByTestId('pilot-status').textContent(), { timeout: 60_000 }).toBe('Done');
      const facts = page.getByTestId('pilot-facts');
      await expect.poll(() => facts.textContent()).toContain('Last job');
      expect(await facts.textContent()).not.toContain('Current job');
      expect(await page.getByTestId('pilot-job').getByRole('link').getAttribute('href')).toBe(`/jobs/${jobId}`);
      // Its jobs (those it holds or last ran), each a link.
      await expect.poll(() => page.getByTestId('pilot-jobs').textContent()).toContain(`${jobId} Done`);
      expect(
        await page
          .getByTestId('pilot-jobs')
          .getByRole('link', { name: String(jobId), exact: true })
          .getAttribute('href'),
      ).toBe(`/jobs/${jobId}`);
      await screenshot(page, `${browser.tag}-links-pilot`);

      // Pilot → its site on the Sites page → the site's jobs.
      await page.getByTestId('pilot-site').click();
      await page.waitForURL(new RegExp(`/sites#site-${LOCAL.replace('.', '\\.')}$`));
      const site = page.getByTestId(`site-${LOCAL}`);
      await expect.poll(() => site.getAttribute('class')).toBe('site target');
      expect(await page.getByTestId(`site-pilots-${LOCAL}`).getAttribute('href')).toBe(`/pilots?site=${LOCAL}`);
      await screenshot(page, `${browser.tag}-links-site`);
      await page.getByTestId(`site-jobs-${LOCAL}`).click();
      await page.waitForURL(new RegExp(`/jobs\\?site=${LOCAL.replace('.', '\\.')}`));
      await page
        .getByTestId('jobs')
        .getByRole('link', { name: String(jobId), exact: true })
        .waitFor();

      // Job → its site; job → its group (the jobs page filtered by it).
      await page
        .getByTestId('jobs')
        .getByRole('link', { name: String(jobId), exact: true })
        .click();
      await page.getByTestId('job-site').click();
      await page.waitForURL(/\/sites#site-/);
      await expect.poll(() => site.getAttribute('class')).toBe('site target');
      await page.goBack();
      await page.getByTestId('job-group').click();
      await page.waitForURL(new RegExp(`/jobs\\?group=${GROUP}`));
      await page
        .getByTestId('jobs')
        .getByRole('link', { name: String(jobId), exact: true })
        .waitFor();
    });

    it('a user, who may not read pilots, sees the pilot id as text, and the site as a link', async () => {
      const { page } = browser;
      await signIn(page, sys.url, await sys.token('alice'), 'alice (user');
      await page.goto(`${sys.url}/jobs/${jobId}`);
      await expect.poll(() => page.getByTestId('job-pilot').textContent()).toBe(String(pilotId));
      expect(await page.getByTestId('job-pilot').evaluate((e) => e.tagName)).toBe('SPAN');
      expect(await page.getByTestId('job-site').getAttribute('href')).toBe(`/sites#site-${LOCAL}`);
    });

    it('times are local with their offset and a date, UTC on hover; durations read as people read them', async () => {
      const { page } = browser;
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: ZONE });
      await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');
      await page.goto(`${sys.url}/jobs/${jobId}`);
      const job = await sys.api('GET', `/api/jobs/${jobId}`);
      const submitted = page.getByTestId('job-submitted').locator('time');
      await expect.poll(() => submitted.textContent()).toBe(kolkata(job.submittedAt));
      expect(await submitted.getAttribute('title')).toBe(utc(job.submittedAt));
      expect(await submitted.getAttribute('datetime')).toBe(job.submittedAt);

      // The timeline: each change with its date, its offset and UTC on hover.
      const history = (await sys.api('GET', `/api/jobs/${jobId}/history`)).history as { at: string }[];
      const times = page.getByTestId('history').locator('time');
      await expect.poll(() => times.count()).toBe(history.length);
      expect(await times.allTextContents()).toEqual(history.map((h) => kolkata(h.at)));
      expect(await times.evaluateAll((ts) => ts.map((t) => t.getAttribute('title')))).toEqual(history.map((h) => utc(h.at)));

      // Durations: 600 s asked reads "10 min".
      expect(await page.locator('.facts').first().textContent()).toContain('CPU time asked10 min');
      await screenshot(page, `${browser.tag}-links-times`);
      await cdp.detach();
    });
  });
});
