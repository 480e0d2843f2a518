/**
 * The Jobs and Job pages in real headless Chromium against a whole system (PGlite and
 * PostgreSQL): the filters (job group, search by name or id, site, submission days, each kept in
 * the address and sent to the API; a bad day in the address is a clear error), and a job that
 * ran showing its heartbeats (latest figures, sparklines), the last lines of its stdout apart
 * from the other parameters, and its "Download output" button.
 * Screenshots: test-output/screenshots/<driver>-jobs-filtered.png, <driver>-job-heartbeats.png.
 */
import { expect, it } from 'vitest';
import { LOCAL_SITE } from '../../cli/server-system.js';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';
import type { Page } from 'playwright-core';

/** A quick job in group `group` named `name`. */
function quick(name: string, group: string): string {
  return `[\n  JobName = "${name}";\n  JobGroup = "${group}";\n  Executable = "/bin/true";\n  CPUTime = 600;\n]\n`;
}

/** Prints two lines, then burns a little CPU each second for 4 s, so that heartbeats (every second) see it grow. */
const PEEK_JDL = `[
  JobName = "peek";
  JobGroup = "peek-group";
  Executable = "/bin/sh";
  Arguments = "-c 'echo peek-line-1; echo peek-line-2; for n in 1 2 3 4; do i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 1; done; echo peek-done'";
  StdOutput = "std.out";
  OutputSandbox = { "std.out" };
  CPUTime = 600;
]
`;

/** YYYY-MM-DD of the day `offsetDays` from today, in this machine's (and Chromium's) time zone. */
function day(offsetDays = 0): string {
  const d = new Date();
  d.setDate(d.getDate() + offsetDays);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The job ids in the jobs table, as shown. */
async function shownIds(page: Page): Promise<number[]> {
  const cells = await page.getByTestId('jobs').locator('tbody tr td:first-child').allTextContents();
  return cells.map(Number).sort((a, b) => a - b);
}

describeBrowser('jobs pages in Chromium', () => {
  describeSystem('jobs pages', (sys) => {
    const browser = useBrowser();

    it('filters the jobs by group, search, site and submission day, kept in the address', async () => {
      const alice = await sys.token('alice');
      const alpha = (
        await sys.api<{ jobIds: number[] }>(
          'POST',
          '/api/jobs',
          { jdls: [quick('alpha-one', 'alpha'), quick('alpha-two', 'alpha')] },
          alice,
        )
      ).jobIds;
      const [beta] = await sys.submit(quick('beta-one', 'beta'), alice);
      // Another user's job in the same group: never on alice's page.
      await sys.submit(quick('alpha-bob', 'alpha'), await sys.token('bob'));
      const mine = [...alpha, beta!].sort((a, b) => a - b);

      const { page } = browser;
      await page.goto(sys.url + '/jobs');
      await page.getByLabel('Token').fill(alice);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByTestId('identity').textContent()).toContain('alice (user');
      await expect.poll(() => shownIds(page)).toEqual(mine);

      // By job group.
      await page.getByLabel('Job group').fill('alpha');
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(/\/jobs\?group=alpha$/);
      await expect.poll(() => shownIds(page)).toEqual(alpha);
      await expect.poll(() => page.getByTestId('counts').getByRole('link', { name: /^All/ }).textContent()).toBe('All 2');

      // By part of the name (case-insensitive); the group field is emptied.
      await page.getByLabel('Job group').fill('');
      await page.getByLabel('Search').fill('BETA-o');
      await page.getByLabel('Search').press('Enter');
      await page.waitForURL(/\/jobs\?search=BETA-o$/);
      await expect.poll(() => shownIds(page)).toEqual([beta]);

      // By id.
      await page.getByLabel('Search').fill(String(alpha[1]));
      await page.getByLabel('Search').press('Enter');
      await expect.poll(() => shownIds(page)).toEqual([alpha[1]]);

      // Back in history restores the filter of the address, and its form field.
      await page.goBack();
      await page.waitForURL(/\/jobs\?search=BETA-o$/);
      await expect.poll(() => shownIds(page)).toEqual([beta]);
      expect(await page.getByLabel('Search').inputValue()).toBe('BETA-o');

      // By site, once the jobs ran there: the local site lists them, another none.
      for (const id of mine) await sys.waitForStatus(id, ['Done'], 90_000);
      await page.goto(`${sys.url}/jobs?site=${encodeURIComponent(LOCAL_SITE.site)}&group=alpha`);
      await expect.poll(() => shownIds(page)).toEqual(alpha);
      expect(await page.getByLabel('Site').inputValue()).toBe(LOCAL_SITE.site);
      await page.getByLabel('Site').fill('Nowhere.else');
      await page.getByRole('button', { name: 'Filter' }).click();
      await expect.poll(() => page.getByText('No jobs match these filters.').count()).toBe(1);
      expect(await shownIds(page)).toEqual([]);

      // By submission day: today has them all, up to yesterday none.
      await page.getByRole('link', { name: 'Clear filters' }).click();
      await page.waitForURL(/\/jobs$/);
      await page.getByLabel('Submitted from').fill(day(0));
      await page.getByLabel('Submitted until').fill(day(0));
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(new RegExp(`since=${day(0)}&until=${day(0)}$`));
      await expect.poll(() => shownIds(page)).toEqual(mine);
      await page.getByLabel('Submitted from').fill('');
      await page.getByLabel('Submitted until').fill(day(-1));
      await page.getByRole('button', { name: 'Filter' }).click();
      await expect.poll(() => page.getByText('No jobs match these filters.').count()).toBe(1);
      await expect.poll(() => page.getByTestId('counts').getByRole('link', { name: /^All/ }).textContent()).toBe('All 0');

      // Filters together, then a screenshot of the page as filtered.
      await page.goto(`${sys.url}/jobs?group=alpha&search=two&since=${day(0)}`);
      await expect.poll(() => shownIds(page)).toEqual([alpha[1]]);
      await screenshot(page, `${browser.tag}-jobs-filtered`);

      // A day that is not one, typed into the address: a clear error, no rows.
      await page.goto(`${sys.url}/jobs?since=2026-02-31`);
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('Submitted from: "2026-02-31" is not a date (YYYY-MM-DD)');
      expect(await shownIds(page)).toEqual([]);
    });

    it('shows the heartbeats, the stdout peek and the output download of a job that ran', async () => {
      const alice = await sys.token('alice');
      const [id] = await sys.submit(PEEK_JDL, alice);
      const { page } = browser;
      await page.goto(`${sys.url}/jobs/${id}`);
      await expect.poll(() => page.getByTestId('job-status').textContent(), { timeout: 90_000, interval: 500 }).toBe('Done');

      const beats = (
        await sys.api<{ heartbeats: { cpuSeconds: number; rssMb: number }[] }>('GET', `/api/jobs/${id}/heartbeats`, undefined, alice)
      ).heartbeats;
      expect(beats.length).toBeGreaterThanOrEqual(2);
      const cpu = beats.map((b) => b.cpuSeconds);
      expect([...cpu].sort((a, b) => a - b)).toEqual(cpu);
      const latest = page.getByTestId('heartbeat-latest');
      await expect.poll(() => latest.textContent()).toContain(`(${beats.length} shown)`);
      const text = (await latest.textContent()) ?? '';
      expect(text).toContain(`CPU time${beats.at(-1)!.cpuSeconds.toFixed(1)} s`);
      expect(text).toContain(`Memory (RSS)${beats.at(-1)!.rssMb.toFixed(1)} MB`);
      expect(await page.locator('svg.sparkline').count()).toBe(2);
      expect(await page.locator('svg.sparkline polyline').count()).toBe(2);
      expect(await page.getByRole('img', { name: /^CPU seconds: \d+ heartbeats/ }).count()).toBe(1);

      // The stdout peek in its own section, not among the parameters.
      await page.getByRole('heading', { name: 'Standard output (last lines)' }).waitFor();
      await expect.poll(() => page.getByTestId('stdout').textContent()).toContain('peek-line-1\npeek-line-2');
      await expect.poll(() => page.getByTestId('parameters').textContent()).toContain('OutputSandbox');
      expect(await page.getByTestId('parameters').textContent()).not.toContain('StandardOutput');
      await page.getByRole('button', { name: 'Download output' }).waitFor();
      await screenshot(page, `${browser.tag}-job-heartbeats`);
    });
  });
});
