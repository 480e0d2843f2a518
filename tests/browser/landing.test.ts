/**
 * Each role lands on a page it may read, in real headless Chromium against a whole system
 * (PGlite and PostgreSQL): a site admin signing in (at `/`, or on Jobs) lands on Sites and sees
 * only the pages it may use in the header; a page its role may not use says who may use it and
 * links the ones it may; a user is told the same on Pilots. No page shows the API's raw
 * "role … may not call this route". Screenshots: test-output/screenshots/<driver>-landing-*.png.
 */
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

const SITE = 'TEST.Landing.org';

/** Opens `path` signed out, signs in with `token` there, and waits for the identity in the header. */
/** The page's text has no raw role refusal of the API. */
async function expectNoRawRoleError(page: Page): Promise<void> {
  expect(await page.locator('body').textContent()).not.toMatch(/may not call this route|role [\w-]+ may not/);
}

const navLinks = (page: Page) => page.locator('header nav a').allTextContents();

describeBrowser('landing pages per role in Chromium', () => {
  describeSystem(
    'landing',
    (sys) => {
      const browser = useBrowser();

      it('a site admin lands on Sites, sees only its pages, and is told where to go from Jobs', async () => {
        await sys.api('PUT', '/api/sites', {
          sites: [
            {
              name: SITE,
              computingElements: [
                {
                  name: 'landing-ce',
                  type: 'local',
                  queues: [{ name: 'q', maxWaitingPilots: 1, maxTotalPilots: 1, maxPilotsPerCycle: 1 }],
                },
              ],
            },
          ],
        });
        const { token } = await sys.api<{ token: string }>('POST', '/api/tokens', {
          user: 'sam',
          vo: 'vo',
          group: 'vo_site',
          role: 'site-admin',
          sites: [SITE],
        });
        const { page } = browser;
        for (const path of ['/', '/jobs']) {
          await signIn(page, sys.url, token, 'sam (site-admin', path);
          await page.waitForURL(/\/sites$/);
          await page.getByRole('heading', { name: /^Sites/ }).waitFor();
          await expect.poll(() => page.getByTestId(`site-state-${SITE}`).textContent()).toBe('ok');
          expect(await navLinks(page)).toEqual(['Sites', 'Pilots', 'Usage']);
          expect(await page.getByRole('alert').count()).toBe(0);
          await expectNoRawRoleError(page);
        }
        await screenshot(page, `${browser.tag}-landing-site-admin`);

        // Jobs (a shared link, a reload): what it is for, who may use it, and the pages it may use.
        await page.goto(`${sys.url}/jobs`);
        const note = page.getByTestId('not-for-role');
        await note.waitFor();
        expect(await note.textContent()).toContain(`is for users and admins; you are signed in as sam (site-admin of ${SITE})`);
        expect(await note.getByRole('link').allTextContents()).toEqual(['Sites', 'Pilots', 'Usage']);
        await expectNoRawRoleError(page);
        await screenshot(page, `${browser.tag}-landing-not-for-role`);
        await note.getByRole('link', { name: 'Pilots' }).click();
        await page.waitForURL(/\/pilots$/);
        await page.getByTestId('pilots').waitFor();
        expect(await page.getByRole('alert').count()).toBe(0);

        // A job's page too: no raw refusal of GET /api/jobs/:id.
        await page.goto(`${sys.url}/jobs/1`);
        await note.waitFor();
        await expectNoRawRoleError(page);
      });

      it('a user lands on Jobs; Pilots tells them it is for admins and site admins', async () => {
        const { page } = browser;
        await signIn(page, sys.url, await sys.token('alice'), 'alice (user', '/');
        await page.waitForURL(/\/jobs$/);
        await page.getByTestId('jobs').waitFor();
        expect(await navLinks(page)).toEqual(['Jobs', 'Submit', 'Sites', 'Usage']);

        await page.goto(`${sys.url}/pilots`);
        const note = page.getByTestId('not-for-role');
        await note.waitFor();
        expect(await note.textContent()).toContain('is for admins and site admins; you are signed in as alice (user)');
        expect(await note.getByRole('link').allTextContents()).toEqual(['Jobs', 'Submit', 'Sites', 'Usage']);
        await expectNoRawRoleError(page);
      });
    },
    { config: { localSite: false, agents: false } },
  );
});
