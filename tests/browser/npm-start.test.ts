/**
 * Every page of the dashboard on the embedded default, exactly as a physicist starts it:
 * `npm start` (PGlite under the data directory, agents on their default schedules, the local
 * site), signed in with the admin token it writes. A hello job runs through a local pilot, then
 * each page is opened in headless Chromium and must show its content with no error on the page,
 * no uncaught exception and no console error. Screenshots: test-output/screenshots/npm-start-*.png.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBrowser, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HELLO = `[
  JobName = "hello-npm-start";
  Executable = "/bin/echo";
  Arguments = "Hello from npm start";
  StdOutput = "std.out";
  OutputSandbox = { "std.out" };
  CPUTime = 600;
]`;

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** `npm start -- --port 0 --data-dir DIR`; resolves with the URL it prints. */
async function npmStart(dataDir: string): Promise<Started> {
  const child = spawn('npm', ['start', '--silent', '--', '--port', '0', '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, CI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: npm, node and the local pilots end together
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no URL within 60 s:\n${out}`)), 60_000);
    const look = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with code ${code}:\n${out}`));
    });
  });
  return { child, url, output: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const gone = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid, 'SIGINT');
  const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 15_000);
  await gone;
  clearTimeout(timer);
}

async function call<T>(url: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

describeBrowser('every page on the embedded default after npm start', () => {
  let dir: string;
  let started: Started | null = null;
  let admin: string;
  let browser: BrowserSession;
  let jobId: number;
  let pilotId: number;
  const problems: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wms-npm-start-'));
    started = await npmStart(join(dir, 'var'));
    admin = (await readFile(join(dir, 'var', 'admin.token'), 'utf8')).trim();
    browser = await openBrowser();
    browser.page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
    browser.page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    browser.page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} for ${r.request().method()} ${r.url().replace(started!.url, '')}`);
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (started) await stop(started.child);
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  /** Opens `path`, waits for `ready`, and checks the page shows no error. */
  async function visit(path: string, name: string, ready: (page: Page) => Promise<unknown>): Promise<void> {
    const { page } = browser;
    await page.goto(started!.url + path);
    await ready(page);
    expect(await page.getByRole('alert').count(), `${path}: an error is shown`).toBe(0);
    expect(await page.locator('.error').count(), `${path}: an error is shown`).toBe(0);
    await screenshot(page, `npm-start-${name}`);
  }

  it('runs hello through a local pilot on the default schedules', async () => {
    const self = await call<{ vo: string }>(started!.url, admin, 'GET', '/api/tokens/self');
    const alice = await call<{ token: string }>(started!.url, admin, 'POST', '/api/tokens', {
      user: 'alice',
      vo: self.vo,
      group: `${self.vo}_user`,
    });
    const submitted = await call<{ jobIds: number[] }>(started!.url, alice.token, 'POST', '/api/jobs', { jdl: HELLO });
    jobId = submitted.jobIds[0]!;
    await expect
      .poll(async () => (await call<{ status: string }>(started!.url, alice.token, 'GET', `/api/jobs/${jobId}`)).status, {
        timeout: 120_000,
        interval: 1000,
      })
      .toBe('Done');
    const job = await call<{ pilotId: number | null }>(started!.url, alice.token, 'GET', `/api/jobs/${jobId}`);
    expect(job.pilotId).not.toBeNull();
    pilotId = job.pilotId!;
  }, 150_000);

  it('signs in with the admin token npm start wrote', async () => {
    const { page } = browser;
    await page.goto(started!.url + '/');
    await page.getByLabel('Token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('identity').textContent()).toContain('(admin');
  });

  it('Jobs lists the job with its counts', async () => {
    await visit('/jobs', 'jobs', (page) => page.getByRole('link', { name: String(jobId), exact: true }).waitFor());
    expect(await browser.page.getByTestId('counts').textContent()).toContain('Done');
  });

  it('the job page shows Done, its history and its JDL', async () => {
    await visit(`/jobs/${jobId}`, 'job', async (page) => {
      await expect.poll(() => page.getByTestId('job-status').textContent()).toBe('Done');
      await page.getByTestId('history').getByText('Done').first().waitFor();
    });
    expect(await browser.page.getByTestId('jdl').textContent()).toContain('hello-npm-start');
  });

  it('Submit checks the JDL in the editor and offers the application forms', async () => {
    await visit('/submit', 'submit', (page) => page.getByTestId('jdl-ok').waitFor());
    await browser.page.getByRole('tab', { name: 'Forms' }).click();
    await expect.poll(() => browser.page.getByLabel('Application').textContent()).toContain('Hello world');
  });

  it('Sites shows the local site', async () => {
    await visit('/sites', 'sites', (page) => page.getByText('Local.localhost').first().waitFor());
  });

  it('Pilots lists the pilot, and its page shows its environment and log', async () => {
    await visit('/pilots', 'pilots', (page) => page.getByRole('link', { name: String(pilotId), exact: true }).waitFor());
    await visit(`/pilots/${pilotId}`, 'pilot', (page) => page.getByText('db12:').first().waitFor());
  });

  it('Usage shows the usage of the last day and week', async () => {
    await visit('/usage', 'usage', (page) => page.getByRole('heading', { name: 'Quotas and usage' }).waitFor());
  });

  it('no page raised an error or logged one to the console', () => {
    expect(problems).toEqual([]);
  });
});
