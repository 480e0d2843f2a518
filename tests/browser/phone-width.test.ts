/**
 * Every page of the dashboard at a phone's width (390 × 844), in real headless Chromium against
 * a whole system (PGlite and PostgreSQL) with a job run by the local site and a job waiting at
 * a banned site: the page itself never scrolls sideways (the header wraps, facts wrap), and the
 * main table of each page scrolls inside its own box instead.
 * Screenshots: test-output/screenshots/<driver>-phone-<page>.png.
 */
import type { Locator, Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

const WIDTH = 390;
const SITE = 'TEST.Phone-width-of-a-site.org';
const DONE_JDL = '[ JobName = "phone"; Executable = "/bin/echo"; Arguments = "hi"; CPUTime = 600; ]';
const WAITING_JDL = `[ JobName = "a-job-with-a-rather-long-name-for-a-phone"; Executable = "/bin/true"; Site = "${SITE}"; CPUTime = 600; ]`;

/** How wide the page's content is: more than the window means it scrolls sideways. */
function pageWidth(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth');
}

/**
 * The box that scrolls `table` sideways (its nearest ancestor with overflow-x auto or scroll):
 * its width and its content's, or null when no ancestor scrolls. (Browser code: no DOM types
 * in the tests' compilation, hence `any`.)
 */
function scroller(table: Locator): Promise<{ clientWidth: number; scrollWidth: number } | null> {
  return table.evaluate((t: any) => {
    const doc = t.ownerDocument;
    for (let e = t.parentElement; e && e !== doc.body; e = e.parentElement) {
      const overflow = doc.defaultView.getComputedStyle(e).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') return { clientWidth: e.clientWidth, scrollWidth: e.scrollWidth };
    }
    return null;
  });
}

describeBrowser('phone width in Chromium', () => {
  describeSystem('phone width', (sys) => {
    const browser = useBrowser();

    it('every page fits 390 px: the header wraps, tables scroll inside their box', async () => {
      await sys.api('PUT', '/api/sites', {
        sites: [
          {
            name: SITE,
            computingElements: [
              {
                name: 'phone-computing-element',
                type: 'local',
                queues: [{ name: 'a-long-queue-name', cpuTime: 10_000, maxWaitingPilots: 1, maxTotalPilots: 1, maxPilotsPerCycle: 1 }],
              },
            ],
          },
        ],
      });
      await sys.api('POST', `/api/sites/${SITE}/ban`, { reason: 'kept closed so that its job waits and says why' });
      const alice = await sys.token('alice');
      const [done] = await sys.submit(DONE_JDL, alice);
      const [waiting] = await sys.submit(WAITING_JDL, alice);
      const job = await sys.waitForStatus(done!, ['Done'], 90_000);
      const { page } = browser;
      await page.setViewportSize({ width: WIDTH, height: 844 });

      // Signed out: the sign-in page.
      await page.goto(sys.url + '/jobs');
      await page.evaluate('sessionStorage.clear()');
      await page.reload();
      await page.getByLabel('Token').waitFor();
      expect(await pageWidth(page)).toBeLessThanOrEqual(WIDTH);
      await screenshot(page, `${browser.tag}-phone-sign-in`);

      await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');
      // `table`: the page's main table; `wide`: wider than a phone, so its box must scroll.
      const pages: { name: string; path: string; ready: (p: Page) => Locator; table?: (p: Page) => Locator; wide?: boolean }[] = [
        {
          name: 'jobs',
          path: '/jobs',
          ready: (p) => p.getByTestId('jobs').getByRole('link', { name: String(waiting) }),
          table: (p) => p.getByTestId('jobs'),
          wide: true,
        },
        {
          name: 'job-waiting',
          path: `/jobs/${waiting}`,
          ready: (p) => p.getByTestId('explain-queues'),
          table: (p) => p.getByTestId('explain-queues'),
        },
        { name: 'job-done', path: `/jobs/${done}`, ready: (p) => p.getByTestId('heartbeats') },
        { name: 'submit', path: '/submit', ready: (p) => p.getByRole('button', { name: 'Submit' }).first() },
        {
          name: 'sites',
          path: '/sites',
          ready: (p) => p.getByTestId(`site-${SITE}`).locator('table').first(),
          table: (p) => p.getByTestId(`site-${SITE}`).locator('table').first(),
          wide: true,
        },
        {
          name: 'pilots',
          path: '/pilots',
          ready: (p) => p.getByTestId('pilots').locator('tbody tr').first(),
          table: (p) => p.getByTestId('pilots'),
          wide: true,
        },
        { name: 'pilot', path: `/pilots/${job.pilotId}`, ready: (p) => p.getByTestId('environment') },
        {
          name: 'usage',
          path: '/usage',
          ready: (p) => p.getByTestId('usage-groups').locator('tbody tr').first(),
          table: (p) => p.getByTestId('usage-groups'),
          wide: true,
        },
      ];
      // Every page is measured before anything is asserted: one failure names all the pages that do not fit.
      const problems: string[] = [];
      for (const { name, path, ready, table, wide } of pages) {
        await page.goto(sys.url + path);
        await ready(page).waitFor();
        await page.getByTestId('identity').waitFor();
        await screenshot(page, `${browser.tag}-phone-${name}`);
        const width = await pageWidth(page);
        if (width > WIDTH) problems.push(`${name}: the page is ${width} px wide`);
        if (!table) continue;
        const box = await scroller(table(page));
        if (!box) problems.push(`${name}: no box scrolls its table`);
        else if (box.clientWidth > WIDTH) problems.push(`${name}: the box of its table is ${box.clientWidth} px wide`);
        else if (wide && box.scrollWidth <= box.clientWidth) problems.push(`${name}: its table does not scroll (not wider than its box)`);
      }
      expect(problems).toEqual([]);
    });
  });
});
