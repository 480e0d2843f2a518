/**
 * Why a job waits and what the queues say, in real headless Chromium against a whole system
 * (PGlite and PostgreSQL; no agents, so a job stays Waiting and a pause stays until it ends):
 * - the page of a Waiting job shows the explain answer: a paused queue with until when and why
 *   and that the user can only wait, a queue of another VO, and follows the pause ending and a
 *   ban of the site without a reload; a job that is not Waiting shows no such panel;
 * - the Sites page sums up a site's and a CE's queues: amber when some are paused, "closed"
 *   (never green) when all are, a banned site's queues say so, a paused queue says until when.
 * Screenshots: test-output/screenshots/<driver>-why-waiting*.png, <driver>-sites-paused.png.
 */
import { expect, it } from 'vitest';
import { listCeQueues, pauseQueue } from '../../db/index.js';
import { describeSystem, type SystemCtx } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

const JDL = '[ Executable = "/bin/true"; JobName = "waits"; CPUTime = 100; ]';
const PAUSE_REASON = '5 pilots in a row failed (last: clock skew 61.0 s (limit 5 s))';

/** One site of local CEs, each with queues (names only: everything else the defaults). */
async function applySite(sys: SystemCtx, site: string, ces: Record<string, { name: string; allowedVos?: string[] }[]>): Promise<void> {
  await sys.api('PUT', '/api/sites', {
    sites: [
      {
        name: site,
        computingElements: Object.entries(ces).map(([name, queues]) => ({
          name,
          type: 'local',
          queues: queues.map((q) => ({ cpuTime: 10_000, maxWaitingPilots: 2, maxTotalPilots: 4, maxPilotsPerCycle: 1, ...q })),
        })),
      },
    ],
  });
}

/** Pauses queue `ce`/`queue` until `until` (in the past: the pause has ended). */
async function pause(sys: SystemCtx, ce: string, queue: string, until: Date): Promise<void> {
  const db = sys.system.server.db;
  const q = (await listCeQueues(db)).find((x) => x.ce === ce && x.queue === queue);
  if (!q) throw new Error(`no queue ${ce}/${queue}`);
  await pauseQueue(db, q.queueId, until, PAUSE_REASON);
}

const inMinutes = (m: number) => new Date(Date.now() + m * 60_000);

describeBrowser('why a job waits, and queue badges, in Chromium', () => {
  describeSystem(
    'why waiting',
    (sys) => {
      const browser = useBrowser();

      it("a Waiting job's page says what stops each queue and what the user can do, live", async () => {
        const site = 'TEST.Wait.org';
        await applySite(sys, site, { 'wait-ce': [{ name: 'fast' }, { name: 'lhcb-only', allowedVos: ['lhcb'] }] });
        await pause(sys, 'wait-ce', 'fast', inMinutes(30));
        const alice = await sys.token('alice');
        const [id] = await sys.submit(JDL, alice);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs/${id}`);
        await expect.poll(() => page.getByTestId('job-status').textContent()).toBe('Waiting');
        await page.getByRole('heading', { name: 'Why it waits' }).waitFor();
        const fast = page.getByTestId('explain-wait-ce/fast');
        const other = page.getByTestId('explain-wait-ce/lhcb-only');
        await fast.waitFor();
        const fastText = await fast.textContent();
        expect(fastText).toContain('queue paused until');
        expect(fastText).toContain(PAUSE_REASON);
        expect(fastText).toMatch(/wait: the pause ends in (29|30) min/);
        expect(await fast.locator('td').nth(3).textContent()).toBe('no');
        expect(await other.textContent()).toContain('queue serves VOs {lhcb}, job is of VO vo');
        expect(await other.textContent()).toContain('nothing: this queue is not for your VO');
        // The sentences are the API's, as the CLI prints them.
        const answer = await sys.api('GET', `/api/jobs/${id}/explain`, undefined, alice);
        for (const b of answer.blockers as string[]) expect(await page.getByTestId('explain-summary').textContent()).toContain(b);
        expect(answer.blockers.length).toBeGreaterThan(0);
        await screenshot(page, `${browser.tag}-why-waiting`);

        // The pause ends: the queue can run it now, without a reload.
        await expect.poll(() => page.getByTestId('stream').textContent()).toBe('live');
        await page.evaluate('window.__wmsNoReload = 13');
        await pause(sys, 'wait-ce', 'fast', inMinutes(-1));
        await expect.poll(() => fast.locator('td').nth(3).textContent(), { timeout: 15_000 }).toBe('yes');
        expect(await page.getByTestId('explain-summary').textContent()).toBe(
          'Nothing stops it: a pilot from a queue marked yes below can run it.',
        );

        // A ban of the site stops it again, and says so.
        await sys.api('POST', `/api/sites/${site}/ban`, { reason: 'storage upgrade' });
        await expect.poll(() => fast.textContent(), { timeout: 15_000 }).toContain(`site ${site} is banned: storage upgrade`);
        expect(await fast.textContent()).toContain("nothing: the site's administrators lift the ban");
        expect(await page.evaluate('window.__wmsNoReload')).toBe(13);
        await screenshot(page, `${browser.tag}-why-waiting-banned`);

        // Not Waiting any more: no panel.
        await sys.api('POST', '/api/jobs/kill', { ids: [id] }, alice);
        await expect.poll(() => page.getByTestId('job-status').textContent()).toBe('Killed');
        expect(await page.getByTestId('explain').count()).toBe(0);
        expect(await page.getByRole('heading', { name: 'Why it waits' }).count()).toBe(0);
      });

      it('the Sites page sums up the queues of a site and a CE; a paused queue says until when and why', async () => {
        const site = 'TEST.Badges.org';
        await applySite(sys, site, { 'badge-ce1': [{ name: 'q1' }, { name: 'q2' }], 'badge-ce2': [{ name: 'q3' }] });
        const { page } = browser;
        await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');
        await page.getByRole('link', { name: 'Sites' }).click();
        const siteState = page.getByTestId(`site-state-${site}`);
        await expect.poll(() => siteState.textContent()).toBe('ok');
        await expect.poll(() => page.getByTestId('stream').textContent()).toBe('live');

        // One queue of three paused: the site and its CE say so, the queue until when and why.
        await pause(sys, 'badge-ce1', 'q1', inMinutes(30));
        await expect.poll(() => siteState.textContent(), { timeout: 15_000 }).toBe('ok: 2 of 3 queues open; 1 queue paused');
        expect(await page.getByTestId('ce-state-badge-ce1').textContent()).toBe('ok: 1 of 2 queues open; 1 queue paused');
        expect(await page.getByTestId('ce-state-badge-ce2').textContent()).toBe('ok');
        const q1 = await page.getByTestId('queue-state-badge-ce1/q1').textContent();
        expect(q1).toMatch(/^paused until .+ \(in (29|30) min\): /);
        expect(q1).toContain(PAUSE_REASON);
        expect(await siteState.getAttribute('class')).not.toContain('ok');

        // All paused: the site is closed, not green.
        await pause(sys, 'badge-ce1', 'q2', inMinutes(30));
        await pause(sys, 'badge-ce2', 'q3', inMinutes(30));
        await expect.poll(() => siteState.textContent(), { timeout: 15_000 }).toBe('closed: 3 queues paused');
        expect(await siteState.getAttribute('class')).toBe('state paused');
        expect(await page.getByTestId('ce-state-badge-ce1').textContent()).toBe('closed: 2 queues paused');
        await screenshot(page, `${browser.tag}-sites-paused`);

        // A banned site: its queues say so.
        await sys.api('POST', `/api/sites/${site}/ban`, { reason: 'decommissioned' });
        await expect.poll(() => siteState.textContent(), { timeout: 15_000 }).toBe('banned: decommissioned');
        for (const q of ['badge-ce1/q1', 'badge-ce1/q2', 'badge-ce2/q3']) {
          expect(await page.getByTestId(`queue-state-${q}`).textContent()).toBe('site banned: decommissioned');
        }
        expect(await page.getByTestId('ce-state-badge-ce2').textContent()).toBe('closed: site banned');
      });
    },
    { config: { localSite: false, agents: false } },
  );
});
