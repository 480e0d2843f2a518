/**
 * Issue 13, point 7, in real headless Chromium against a whole system (PGlite and PostgreSQL):
 * the JDL editor flags a local InputSandbox file at its line and column and keeps Submit
 * disabled; attaching the file packs it in the browser (ustar, gzip), uploads it as a sandbox
 * and rewrites the InputSandbox to `SB:<sha256>`; the job is stored with it and runs to Done,
 * reading the file on the worker.
 * Screenshots: test-output/screenshots/<driver>-submit-attach*.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSystem } from '../helpers/system.js';
import { describeBrowser, screenshot, useBrowser } from '../helpers/browser.js';

const JDL = `[
  JobName = "attach";
  Executable = "/bin/sh";
  Arguments = "greet.sh";
  InputSandbox = { "scripts/greet.sh" };
  StdOutput = "std.out";
  OutputSandbox = { "std.out" };
  CPUTime = 600;
]
`;

const GREET = 'echo "hello from an attached file"\n';

describeBrowser('JDL editor: attaching local InputSandbox files in Chromium', () => {
  describeSystem('jdl attach', (sys) => {
    const browser = useBrowser();

    it('flags the local file at its line and column, and submits nothing', async () => {
      const { page } = browser;
      await page.goto(sys.url + '/submit');
      await page.getByLabel('Token').fill(await sys.token('alice'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByTestId('identity').textContent()).toContain('alice (user');
      await page.getByLabel('JDL').fill(JDL);
      const problem = page.getByTestId('problems').locator('li');
      await expect.poll(() => problem.first().textContent()).toContain('Line 5, column 18: InputSandbox entry scripts/greet.sh is neither');
      expect(await problem.count()).toBe(1);
      expect(await page.getByRole('button', { name: 'Submit' }).isDisabled()).toBe(true);
      expect(await page.getByTestId('attach').textContent()).toContain('scripts/greet.sh');
      await screenshot(page, `${browser.tag}-submit-attach`);

      // A file of another name is not taken.
      await page.getByLabel('Attach files').setInputFiles({ name: 'other.sh', mimeType: 'text/plain', buffer: Buffer.from(GREET) });
      await expect.poll(() => page.getByTestId('attach-problem').textContent()).toContain('pick greet.sh too');
      expect(await page.getByLabel('JDL').inputValue()).toBe(JDL);
    });

    it('attaches the file: uploaded, rewritten to SB:, stored with it, and the job reads it on the worker', async () => {
      const { page } = browser;
      await page.getByLabel('Attach files').setInputFiles({ name: 'greet.sh', mimeType: 'text/plain', buffer: Buffer.from(GREET) });
      await page.getByTestId('jdl-ok').waitFor();
      const text = await page.getByLabel('JDL').inputValue();
      const sha = /InputSandbox = \{ "SB:([0-9a-f]{64})" \};/.exec(text)?.[1];
      expect(sha, text).toBeDefined();
      expect(text.split('\n')).toHaveLength(JDL.split('\n').length);
      expect(await page.getByTestId('attach').count()).toBe(0);
      await screenshot(page, `${browser.tag}-submit-attached`);

      await page.getByRole('button', { name: 'Submit' }).click();
      await page.waitForURL(/\/jobs\/\d+$/);
      const id = Number(/\/jobs\/(\d+)$/.exec(page.url())?.[1]);
      const alice = await sys.token('alice');
      const job = await sys.api<{ jdl: string }>('GET', `/api/jobs/${id}`, undefined, alice);
      expect(job.jdl).toContain(`InputSandbox = { "SB:${sha}" };`);

      const done = await sys.waitForStatus(id, ['Done', 'Failed'], 90_000);
      expect(done.status, JSON.stringify(done)).toBe('Done');
      await expect.poll(() => page.getByTestId('job-status').textContent(), { timeout: 30_000 }).toBe('Done');
      // The payload ran the attached script: its std.out, from the output sandbox.
      const out = await sys.api<{ sandboxes: { sha256: string }[] }>('GET', `/api/jobs/${id}/output`, undefined, alice);
      expect(out.sandboxes).toHaveLength(1);
      const res = await fetch(`${sys.url}/api/sandboxes/${out.sandboxes[0]!.sha256}`, { headers: { authorization: `Bearer ${alice}` } });
      expect(res.status).toBe(200);
      const dir = await mkdtemp(join(tmpdir(), 'wms-attach-out-'));
      try {
        await writeFile(join(dir, 'out.tar.gz'), Buffer.from(await res.arrayBuffer()));
        expect(execFileSync('tar', ['-xzOf', join(dir, 'out.tar.gz'), 'std.out'], { encoding: 'utf8' })).toContain(
          'hello from an attached file',
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
