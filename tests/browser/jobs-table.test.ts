/**
 * The jobs table in real headless Chromium against a whole system (PGlite and PostgreSQL; no
 * agents, so jobs stay Waiting until killed): sorting by a column (done by the API, kept in the
 * address; an unknown column refused with 400), the page size, the CSV and JSON export of every
 * job of the filters (read from the download), the owner filter for admins only, and the bulk
 * actions: a kill of every job matching a filter, confirmed with the counts of a dry run, and a
 * confirmation cancelled that changes nothing.
 * Screenshots: test-output/screenshots/<driver>-jobs-sorted.png, <driver>-jobs-bulk-confirm.png.
 */
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeSystem, type SystemCtx } from '../helpers/system.js';
import { describeBrowser, screenshot, signIn, useBrowser } from '../helpers/browser.js';

/** A job named `name` in group `group` (JDL string quoting: `"` and `\` escaped). */
function jdl(name: string, group: string): string {
  return `[ JobName = "${name.replace(/[\\"]/g, (c) => `\\${c}`)}"; JobGroup = "${group}"; Executable = "/bin/true"; CPUTime = 100; ]`;
}

/** `n` parametric jobs `<group>_0`... in group `group`. */
function sweep(group: string, n: number): string {
  return `[ JobName = "${group}_%n"; JobGroup = "${group}"; Executable = "/bin/true"; Parameters = ${n}; ParameterStart = 0; ParameterStep = 1; CPUTime = 100; ]`;
}

async function submitAll(sys: SystemCtx, jdls: string[], token: string): Promise<number[]> {
  return (await sys.api<{ jobIds: number[] }>('POST', '/api/jobs', { jdls }, token)).jobIds;
}

/** The job ids of the table, in the order shown. */
async function rowIds(page: Page): Promise<number[]> {
  return (await page.getByTestId('jobs').locator('tbody tr td:first-child').allTextContents()).map(Number);
}

/** The cells of the column headed `name`, in the order shown. */
async function column(page: Page, name: string): Promise<string[]> {
  const heads = (await page.getByTestId('jobs').locator('thead th').allTextContents()).map((h) => h.replace(/[▲▼]/g, '').trim());
  const n = heads.indexOf(name) + 1;
  expect(n).toBeGreaterThan(0);
  return page.getByTestId('jobs').locator(`tbody tr td:nth-child(${n})`).allTextContents();
}

/** The status of each of `ids`, as the API says. */
async function statuses(sys: SystemCtx, ids: number[]): Promise<string[]> {
  const r = await sys.api<{ jobs: { id: number; status: string }[] }>('GET', `/api/jobs/status?ids=${ids.join(',')}`);
  const byId = new Map(r.jobs.map((j) => [j.id, j.status]));
  return ids.map((id) => byId.get(id) ?? 'absent');
}

const asc = (a: number, b: number) => a - b;

describeBrowser('the jobs table in Chromium', () => {
  describeSystem(
    'jobs table',
    (sys) => {
      const browser = useBrowser();

      it('sorts by the column clicked, through the API, kept in the address; refuses other columns', async () => {
        const alice = await sys.token('alice');
        const ids = await submitAll(
          sys,
          [jdl('srt-1', 'g-c'), jdl('srt-2', 'g-a'), jdl('srt-3', 'g-b'), jdl('srt-4', 'g-a'), jdl('srt-5', 'g-c')],
          alice,
        );
        const killed = [ids[0]!, ids[2]!];
        await sys.api('POST', '/api/jobs/kill', { ids: killed }, alice);
        const waiting = ids.filter((id) => !killed.includes(id));
        const reversed = (list: number[]) => [...list].reverse();
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs?search=srt`);
        await expect.poll(() => rowIds(page)).toEqual(reversed(ids));

        const table = page.getByTestId('jobs');
        await table.getByRole('button', { name: 'Status', exact: true }).click();
        await page.waitForURL(/\/jobs\?search=srt&sort=status&order=asc$/);
        // Status sorts in lifecycle order (Waiting before Killed), not by name; ties by id.
        await expect.poll(() => rowIds(page)).toEqual([...waiting, ...killed]);
        expect(await column(page, 'Status')).toEqual(['Waiting', 'Waiting', 'Waiting', 'Killed', 'Killed']);
        expect(await table.locator('th[aria-sort]').textContent()).toContain('Status');
        expect(await table.locator('th[aria-sort]').getAttribute('aria-sort')).toBe('ascending');

        await table.getByRole('button', { name: 'Status', exact: true }).click();
        await page.waitForURL(/sort=status&order=desc$/);
        await expect.poll(() => rowIds(page)).toEqual([...reversed(killed), ...reversed(waiting)]);

        await table.getByRole('button', { name: 'Group', exact: true }).click();
        await page.waitForURL(/sort=group&order=asc$/);
        await expect.poll(() => column(page, 'Group')).toEqual(['g-a', 'g-a', 'g-b', 'g-c', 'g-c']);
        // What the API answers for the same query, ties by id.
        const api = await sys.api<{ jobs: { id: number }[] }>('GET', '/api/jobs?search=srt&sort=group&order=asc', undefined, alice);
        expect(await rowIds(page)).toEqual(api.jobs.map((j) => j.id));
        expect(api.jobs.map((j) => j.id)).toEqual([ids[1], ids[3], ids[2], ids[0], ids[4]]);
        await screenshot(page, `${browser.tag}-jobs-sorted`);

        // Back to Id: newest first, the default, leaves the address without a sort.
        await table.getByRole('button', { name: 'Id', exact: true }).click();
        await page.waitForURL(/\/jobs\?search=srt$/);
        await expect.poll(() => rowIds(page)).toEqual(reversed(ids));

        // The API refuses a column it does not sort by, and a direction that is none, naming them.
        for (const [q, path] of [
          ['sort=jdl', 'querystring/sort'],
          ['order=sideways', 'querystring/order'],
        ] as const) {
          const res = await fetch(`${sys.url}/api/jobs?${q}`, { headers: { authorization: `Bearer ${alice}` } });
          expect(res.status).toBe(400);
          const body = (await res.json()) as { code: string; problems: { path?: string }[] };
          expect(body.code).toBe('WMS_VALIDATION');
          expect(body.problems.map((p) => p.path)).toContain(path);
        }
        // So does the page, from an address typed by hand.
        await page.goto(`${sys.url}/jobs?sort=jdl`);
        await expect.poll(() => page.getByRole('alert').textContent()).toContain('Sort: "jdl" is not a column to sort by');
        expect(await rowIds(page)).toEqual([]);
      });

      it('shows 25 jobs a page, or the page size chosen, kept in the address', async () => {
        const alice = await sys.token('alice');
        await sys.submit(sweep('paging', 30), alice);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs?group=paging`);
        await expect.poll(async () => (await rowIds(page)).length).toBe(25);
        const pager = page.locator('nav.pager');
        expect(await pager.textContent()).toContain('1–25 of 30');

        await page.getByLabel('Per page').selectOption('50');
        await page.waitForURL(/\/jobs\?group=paging&size=50$/);
        await expect.poll(async () => (await rowIds(page)).length).toBe(30);
        expect(await pager.textContent()).toContain('1–30 of 30');
        expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);

        await page.getByLabel('Per page').selectOption('25');
        await page.waitForURL(/\/jobs\?group=paging$/);
        await expect.poll(async () => (await rowIds(page)).length).toBe(25);
        await page.getByRole('button', { name: 'Next' }).click();
        await page.waitForURL(/\/jobs\?group=paging&offset=25$/);
        await expect.poll(async () => (await rowIds(page)).length).toBe(5);

        await page.goto(`${sys.url}/jobs?group=paging&size=7`);
        await expect.poll(() => page.getByRole('alert').textContent()).toContain('Per page: "7" is not one of 25, 50, 100, 200');
      });

      it('exports every job of the filters, all pages, as CSV (quoted) and JSON', async () => {
        const alice = await sys.token('alice');
        const named = await submitAll(sys, [jdl('exp plain', 'export'), jdl('exp, "quoted"', 'export'), jdl('=1+1 exp', 'export')], alice);
        const swept = await sys.submit(sweep('export', 25), alice);
        const all = [...named, ...swept].sort(asc);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs?group=export&sort=id&order=asc`);
        await expect.poll(async () => (await rowIds(page)).length).toBe(25);

        const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
        expect(csvDownload.suggestedFilename()).toMatch(/^jobs-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.csv$/);
        const csv = await readFile((await csvDownload.path())!, 'utf8');
        expect(csv.endsWith('\r\n')).toBe(true);
        const lines = csv.slice(0, -2).split('\r\n');
        expect(lines[0]).toBe(
          'id,jobName,jobGroup,status,minorStatus,applicationStatus,site,owner,ownerGroup,vo,jobType,priority,cpuTime,rescheduleCounter,submittedAt,startExecAt,endExecAt,lastUpdateAt,heartbeatAt',
        );
        // Every job of the filter (28: more than the page shows), in the table's order.
        expect(lines.slice(1).map((l) => Number(l.split(',')[0]))).toEqual(all);
        expect(lines[1]).toMatch(new RegExp(`^${named[0]},exp plain,export,Waiting,`));
        expect(lines[2]).toMatch(new RegExp(`^${named[1]},"exp, ""quoted""",export,Waiting,`));
        // A name a spreadsheet would run as a formula is written as text.
        expect(lines[3]).toMatch(new RegExp(`^${named[2]},'=1\\+1 exp,export,`));
        await expect.poll(() => page.getByTestId('export-note').textContent()).toBe('Exported 28 jobs.');

        const [jsonDownload] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('button', { name: 'Export JSON' }).click(),
        ]);
        expect(jsonDownload.suggestedFilename()).toMatch(/\.json$/);
        const jobs = JSON.parse(await readFile((await jsonDownload.path())!, 'utf8')) as { id: number; jobName: string }[];
        expect(jobs.map((j) => j.id)).toEqual(all);
        expect(jobs[1]!.jobName).toBe('exp, "quoted"');
      });

      it('filters by owner for admins; users have no owner filter', async () => {
        const bobs = await submitAll(sys, [jdl('own-b1', 'owners'), jdl('own-b2', 'owners')], await sys.token('bob'));
        const alices = await submitAll(sys, [jdl('own-a1', 'owners')], await sys.token('alice'));
        const { page } = browser;
        await signIn(page, sys.url, await sys.token('alice'), 'alice (user');
        await page.goto(`${sys.url}/jobs?group=owners`);
        await expect.poll(() => rowIds(page)).toEqual(alices);
        expect(await page.getByLabel('Owner', { exact: true }).count()).toBe(0);

        await signIn(page, sys.url, await sys.adminToken(), 'admin (admin');
        await page.goto(`${sys.url}/jobs?group=owners`);
        await expect.poll(async () => (await rowIds(page)).sort(asc)).toEqual([...bobs, ...alices].sort(asc));
        await page.getByLabel('Owner', { exact: true }).fill('bob');
        await page.getByRole('button', { name: 'Filter' }).click();
        await page.waitForURL(/\/jobs\?group=owners&owner=bob$/);
        await expect.poll(async () => (await rowIds(page)).sort(asc)).toEqual(bobs);
        expect(await column(page, 'Owner')).toEqual(['bob', 'bob']);
        await expect.poll(() => page.getByTestId('counts').getByRole('link', { name: /^All/ }).textContent()).toBe('All 2');
      });

      it('kills every job matching a filter, after a confirmation with the counts; final jobs are skipped', async () => {
        const alice = await sys.token('alice');
        const swept = await sys.submit(sweep('bulk', 30), alice);
        const others = await submitAll(sys, [jdl('bulk-other', 'bulk-other')], alice);
        await sys.api('POST', '/api/jobs/kill', { ids: swept.slice(0, 3) }, alice);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs?group=bulk`);
        await expect.poll(async () => (await rowIds(page)).length).toBe(25);

        await page.getByLabel('Select the jobs of this page').check();
        expect(await page.getByTestId('bulk-selected').textContent()).toBe('25 selected');
        await page.getByRole('button', { name: 'Select all 30 jobs matching the filters' }).click();
        expect(await page.getByTestId('bulk-selected').textContent()).toBe('All 30 jobs matching the filters selected');
        await page.getByTestId('bulk').getByRole('button', { name: 'Kill', exact: true }).click();
        const confirm = page.getByRole('alertdialog');
        await expect.poll(() => confirm.textContent()).toContain('Kill 27 jobs? 3 already final will be skipped (Killed 3).');
        // The question came from a dry run: nothing changed yet.
        expect((await statuses(sys, swept)).filter((s) => s === 'Killed')).toHaveLength(3);
        await screenshot(page, `${browser.tag}-jobs-bulk-confirm`);

        await confirm.getByRole('button', { name: 'Kill 27 jobs' }).click();
        await expect
          .poll(() => page.getByTestId('bulk-result').textContent())
          .toContain('Killed 27 jobs. 3 already final skipped (Killed 3).');
        expect(await statuses(sys, swept)).toEqual(swept.map(() => 'Killed'));
        expect(await statuses(sys, others)).toEqual(['Waiting']);
        await expect.poll(() => column(page, 'Status')).toEqual(Array(25).fill('Killed'));
        expect(await page.getByTestId('bulk-selected').textContent()).toBe('Select jobs to act on them');
      });

      it('a cancelled confirmation changes nothing; chosen rows are acted on once confirmed', async () => {
        const alice = await sys.token('alice');
        const ids = await submitAll(sys, [jdl('pick-1', 'pick'), jdl('pick-2', 'pick'), jdl('pick-3', 'pick')], alice);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs?group=pick`);
        await expect.poll(() => rowIds(page)).toEqual([...ids].reverse());
        const historyBefore = await sys.api<{ history: unknown[] }>('GET', `/api/jobs/${ids[0]}/history`);

        await page.getByLabel(`Select job ${ids[0]}`, { exact: true }).check();
        await page.getByLabel(`Select job ${ids[2]}`, { exact: true }).check();
        expect(await page.getByTestId('bulk-selected').textContent()).toBe('2 selected');
        for (const action of ['Delete', 'Reschedule', 'Kill']) {
          await page.getByTestId('bulk').getByRole('button', { name: action, exact: true }).click();
          await expect.poll(() => page.getByRole('alertdialog').textContent()).toContain(`${action} 2 jobs?`);
          await page.getByRole('alertdialog').getByRole('button', { name: 'Cancel' }).click();
          await expect.poll(() => page.getByRole('alertdialog').count()).toBe(0);
        }
        expect(await statuses(sys, ids)).toEqual(['Waiting', 'Waiting', 'Waiting']);
        expect((await sys.api<{ history: unknown[] }>('GET', `/api/jobs/${ids[0]}/history`)).history).toEqual(historyBefore.history);
        expect(await page.getByTestId('bulk-result').count()).toBe(0);

        await page.getByTestId('bulk').getByRole('button', { name: 'Kill', exact: true }).click();
        await page.getByRole('alertdialog').getByRole('button', { name: 'Kill 2 jobs' }).click();
        await expect.poll(() => page.getByTestId('bulk-result').textContent()).toContain('Killed 2 jobs.');
        expect(await statuses(sys, ids)).toEqual(['Killed', 'Waiting', 'Killed']);
      });

      it("a job page's Reschedule asks first: dismissed, nothing changes; accepted, the job is rescheduled", async () => {
        const alice = await sys.token('alice');
        const [id] = await submitAll(sys, [jdl('resched-one', 'g-one')], alice);
        const { page } = browser;
        await signIn(page, sys.url, alice, 'alice (user');
        await page.goto(`${sys.url}/jobs/${id}`);
        await expect.poll(() => page.getByTestId('job-status').textContent()).toBe('Waiting');
        const asked: string[] = [];
        let accept = false;
        const onDialog = (d: import('playwright-core').Dialog) => {
          asked.push(d.message());
          void (accept ? d.accept() : d.dismiss());
        };
        page.on('dialog', onDialog);
        try {
          await page.getByRole('button', { name: 'Reschedule', exact: true }).click();
          await expect.poll(() => asked.length).toBe(1);
          expect(asked[0]).toBe(`Reschedule job ${id}? It starts again from the beginning.`);
          const counter = async () =>
            (await sys.api<{ rescheduleCounter: number }>('GET', `/api/jobs/${id}`, undefined, alice)).rescheduleCounter;
          expect(await counter()).toBe(0);
          accept = true;
          await page.getByRole('button', { name: 'Reschedule', exact: true }).click();
          await expect.poll(counter).toBe(1);
        } finally {
          page.off('dialog', onDialog);
        }
      });
    },
    { config: { localSite: false, agents: false } },
  );
});
