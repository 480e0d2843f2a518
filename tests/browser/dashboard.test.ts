/**
 * The dashboard in real headless Chromium against a whole system (PGlite and PostgreSQL):
 * sign in with a token, submit hello through the JDL editor and watch it reach Done on the job
 * page without a reload; a JDL with an error shows it at its line and submits nothing.
 * Screenshots of each page: test-output/screenshots/<driver>-<page>.png.
 */
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';

const BAD_JDL = `[
  JobName = "bad";
  Executable = ;
  CPUTime = 600;
]
`;

describeBrowser('dashboard in Chromium', () => {
  describeSystem('dashboard', (sys) => {
    const browser = useBrowser();

    it('signs in with a token and shows who is signed in', async () => {
      const { page } = browser;
      await page.goto(sys.url + '/jobs');
      await page.getByLabel('Token').waitFor();
      await screenshot(page, `${browser.tag}-sign-in`);

      await page.getByLabel('Token').fill('not-a-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();

      await page.getByLabel('Token').fill(await sys.token('alice'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByTestId('identity').textContent()).toContain('alice (user');
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    });

    it('submits hello through the editor and sees it reach Done without reloading', async () => {
      const { page } = browser;
      await page.getByRole('link', { name: 'Submit' }).click();
      await page.getByTestId('jdl-ok').waitFor();
      await screenshot(page, `${browser.tag}-submit`);
      // A marker on the window: a reload would drop it.
      await page.evaluate('window.__wmsNoReload = 42');
      await page.getByRole('button', { name: 'Submit' }).click();

      await page.waitForURL(/\/jobs\/\d+$/);
      const id = Number(/\/jobs\/(\d+)$/.exec(page.url())?.[1]);
      expect(id).toBeGreaterThan(0);
      await expect.poll(() => page.getByTestId('job-status').textContent(), { timeout: 90_000, interval: 500 }).toBe('Done');
      expect(await page.evaluate('window.__wmsNoReload')).toBe(42);
      await expect.poll(() => page.getByTestId('history').textContent()).toContain('Done');
      await expect.poll(() => page.getByTestId('jdl').textContent()).toContain('Hello from pilot-wms');
      expect((await sys.api('GET', `/api/jobs/${id}`)).status).toBe('Done');
      await screenshot(page, `${browser.tag}-job`);

      await page.getByRole('link', { name: '← Jobs' }).click();
      await page
        .getByTestId('jobs')
        .getByRole('link', { name: String(id), exact: true })
        .waitFor();
      await expect.poll(() => page.getByTestId('counts').textContent()).toContain('Done');
      await screenshot(page, `${browser.tag}-jobs`);
    });

    it('shows a JDL error at its line and submits nothing', async () => {
      const { page } = browser;
      const before = (await sys.api('GET', '/api/jobs/summary', undefined, await sys.token('alice'))).total;
      await page.getByRole('link', { name: 'Submit' }).click();
      await page.getByLabel('JDL').fill(BAD_JDL);
      const problem = page.getByTestId('problems').locator('li');
      await expect.poll(() => problem.first().textContent()).toContain('Line 3');
      expect(await problem.first().getAttribute('data-line')).toBe('3');
      expect(await problem.first().textContent()).toContain('Executable');
      expect(await page.locator('.gutter li.bad').allTextContents()).toEqual(['3']);
      const submit = page.getByRole('button', { name: 'Submit' });
      expect(await submit.isDisabled()).toBe(true);
      await page.getByLabel('JDL').press('Control+Enter');
      await screenshot(page, `${browser.tag}-submit-error`);
      expect(page.url()).toMatch(/\/submit$/);
      const after = (await sys.api('GET', '/api/jobs/summary', undefined, await sys.token('alice'))).total;
      expect(after).toBe(before);
    });

    it('serves the page for client routes and leaves the API 404s alone', async () => {
      const page = await fetch(sys.url + '/jobs/12345');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      for (const path of ['/api/nope', '/docs/nope.js', '/pilot/nope', '/metrics/nope']) {
        const res = await fetch(sys.url + path);
        expect(res.status, path).toBe(404);
        expect(res.headers.get('content-type'), path).toContain('application/json');
      }
      const health = await fetch(sys.url + '/api/health');
      expect(((await health.json()) as { status: string }).status).toBe('ok');
    });
  });
});
