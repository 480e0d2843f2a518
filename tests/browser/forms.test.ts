/**
 * Application forms in real headless Chromium against a whole system (PGlite and PostgreSQL):
 * sign in, submit hello through its form, watch the job reach Done without a reload and
 * download its output sandbox with the job page's "Download output" button (a real browser
 * download, untarred here); a value out of range shows its error at that field and submits
 * nothing.
 * Screenshots: test-output/screenshots/<driver>-forms*.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';

describeBrowser('application forms in Chromium', () => {
  describeSystem('forms', (sys) => {
    const browser = useBrowser();

    it('signs in and opens the Forms tab with hello', async () => {
      const { page } = browser;
      await page.goto(sys.url + '/submit');
      await page.getByLabel('Token').fill(await sys.token('alice'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByTestId('identity').textContent()).toContain('alice (user');
      await page.getByRole('tab', { name: 'Forms' }).click();
      await page.getByTestId('app-form').waitFor();
      await page.getByLabel('Application').selectOption('hello');
      expect(await page.getByLabel('Who to greet').inputValue()).toBe('pilot-wms');
      expect(await page.getByLabel('CPU time (s)').inputValue()).toBe('600');
      await screenshot(page, `${browser.tag}-forms`);
    });

    it('shows an out-of-range value at its field and submits nothing', async () => {
      const { page } = browser;
      const before = (await sys.api('GET', '/api/jobs/summary', undefined, await sys.token('alice'))).total;
      await page.getByLabel('CPU time (s)').fill('99999');
      const problems = page.getByTestId('problems-cpuTime');
      await expect.poll(() => problems.textContent()).toContain('CPU time (s) must be at most 3600');
      expect(await page.getByLabel('CPU time (s)').getAttribute('aria-invalid')).toBe('true');
      expect(await page.getByTestId('problems-who').count()).toBe(0);
      await page.getByLabel('Who to greet').fill('bad "quote"');
      await expect.poll(() => page.getByTestId('problems-who').textContent()).toContain('Who to greet must match');
      const submit = page.getByRole('button', { name: 'Submit' });
      expect(await submit.isDisabled()).toBe(true);
      await page.getByLabel('CPU time (s)').press('Enter');
      await screenshot(page, `${browser.tag}-forms-error`);
      expect(page.url()).toMatch(/\/submit$/);
      const after = (await sys.api('GET', '/api/jobs/summary', undefined, await sys.token('alice'))).total;
      expect(after).toBe(before);
      await page.getByLabel('CPU time (s)').fill('600');
      await page.getByLabel('Who to greet').fill('Form tester');
      await expect.poll(() => problems.count()).toBe(0);
    });

    it('submits hello through its form, sees it reach Done without reloading, and downloads its output', async () => {
      const { page } = browser;
      await page.evaluate('window.__wmsNoReload = 7');
      await page.getByRole('button', { name: 'Submit' }).click();
      await page.waitForURL(/\/jobs\/\d+$/);
      const id = Number(/\/jobs\/(\d+)$/.exec(page.url())?.[1]);
      expect(id).toBeGreaterThan(0);
      await expect.poll(() => page.getByTestId('job-status').textContent(), { timeout: 90_000, interval: 500 }).toBe('Done');
      expect(await page.evaluate('window.__wmsNoReload')).toBe(7);
      await expect.poll(() => page.getByTestId('jdl').textContent()).toContain('Hello from Form tester');
      await screenshot(page, `${browser.tag}-forms-job`);

      // The output sandbox, downloaded by the page (with its own token) as a file.
      const button = page.getByRole('button', { name: 'Download output' });
      await button.waitFor();
      const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
      expect(download.suggestedFilename()).toBe(`job-${id}-output.tar.gz`);
      expect(await download.failure()).toBeNull();
      const dir = await mkdtemp(join(tmpdir(), 'wms-forms-out-'));
      try {
        await download.saveAs(join(dir, 'out.tar.gz'));
        execFileSync('tar', ['-xzf', join(dir, 'out.tar.gz'), '-C', dir]);
        expect(await readFile(join(dir, 'std.out'), 'utf8')).toContain('Hello from Form tester');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
