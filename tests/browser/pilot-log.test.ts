/**
 * The pilot page shows the end of a long remote log and follows it, in real headless Chromium
 * against a whole system (PGlite and PostgreSQL): a live pilot with 12,000 log lines shows its
 * last ones, scrolled to the last, with how many earlier lines are not shown; lines the pilot
 * sends later appear at the end without a reload.
 * Screenshot: test-output/screenshots/<driver>-pilot-log.png.
 */
import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { appendPilotLogs, createPilots, updatePilots } from '../../db/index.js';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';

const line = (n: number) => `2026-12-04T12:00:00Z pilot log line ${String(n).padStart(5, '0')}`;

/** Lines `from`..`to` of the log, as the pilot would have sent them. */
function lines(from: number, to: number): { at: Date; line: string }[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({ at: new Date(), line: line(from + i) }));
}

/** The log box: its last line, and whether it is scrolled to its end. */
async function logEnd(page: Page): Promise<{ last: string; atEnd: boolean }> {
  return page.getByTestId('pilot-log').evaluate((el) => ({
    last: (el.textContent ?? '').trimEnd().split('\n').pop() ?? '',
    atEnd: el.scrollTop + el.clientHeight >= el.scrollHeight - 2,
  }));
}

describeBrowser('pilot log in Chromium', () => {
  describeSystem(
    'pilot log',
    (sys) => {
      const browser = useBrowser();

      it('shows the end of a long log, scrolled to it, and follows new lines', async () => {
        const db = sys.system.server.db;
        const [id] = await createPilots(db, [
          { stamp: randomUUID(), site: 'TEST.Log.org', ce: 'log-ce', ceType: 'local', queue: 'q', queueId: null, vo: 'vo' },
        ]);
        await updatePilots(db, [id!], { status: 'Running', reason: 'registered' });
        await appendPilotLogs(db, id!, lines(1, 12_000));

        const { page } = browser;
        await page.goto(sys.url + '/jobs');
        await page.evaluate('sessionStorage.clear()');
        await page.reload();
        await page.getByLabel('Token').fill(await sys.adminToken());
        await page.getByRole('button', { name: 'Sign in' }).click();
        await expect.poll(() => page.getByTestId('identity').textContent()).toContain('admin (admin');
        await page.goto(`${sys.url}/pilots/${id}`);

        await expect.poll(async () => (await logEnd(page)).last, { timeout: 20_000 }).toBe(line(12_000));
        expect((await logEnd(page)).atEnd).toBe(true);
        // Counts as the browser's locale writes them (2,000 or 2000).
        expect(await page.getByTestId('pilot-log-earlier').textContent()).toMatch(
          /^The last 2,?000 lines; 10,?000 earlier lines are not shown\.$/,
        );
        const shown = (await page.getByTestId('pilot-log').textContent())!.trimEnd().split('\n');
        expect(shown[0]).toBe(line(10_001));
        expect(shown).toHaveLength(2000);
        await screenshot(page, `${browser.tag}-pilot-log`);

        // The pilot sends more: they appear at the end, still in view, without a reload.
        await page.evaluate('window.__wmsNoReload = 8');
        await appendPilotLogs(db, id!, lines(12_001, 12_003));
        await expect.poll(async () => (await logEnd(page)).last, { timeout: 15_000 }).toBe(line(12_003));
        expect((await logEnd(page)).atEnd).toBe(true);
        expect(await page.getByTestId('pilot-log-earlier').textContent()).toMatch(/; 10,?003 earlier lines are not shown\.$/);
        expect(await page.evaluate('window.__wmsNoReload')).toBe(8);
      });
    },
    { config: { localSite: false, agents: false } },
  );
});
