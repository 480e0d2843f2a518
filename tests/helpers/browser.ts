/**
 * Real headless Chromium for the `browser` test project: Debian's `chromium` at
 * /usr/bin/chromium (`scripts/test-env.sh` installs it), driven by playwright-core, with a
 * fresh user-data-dir per browser and the flags that keep it off the (closed) network.
 *
 * `describeBrowser(name, fn)` runs `fn` when Chromium is there; without it the suite FAILS
 * under `CI` (one test that says why) and is skipped loudly elsewhere, as tests/helpers/db.ts
 * does for PostgreSQL. Screenshots go to `test-output/screenshots/` (git-ignored).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI } from './db.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = resolve(import.meta.dirname, '../../test-output/screenshots');
export const WEB_DIR = resolve(import.meta.dirname, '../../dist/web');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why Chromium cannot be used here, or null when it can. */
export function chromiumProblem(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (run bash scripts/test-env.sh, or set CHROMIUM_PATH)`;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A new Chromium with its own empty profile, and one page in it. */
export async function openBrowser(): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'wms-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export interface SuiteBrowser {
  readonly page: Page;
  readonly context: BrowserContext;
  /** `pglite` or `postgres`: the running test's `[driver]` (describeSystem), for screenshot names. */
  readonly tag: string;
}

/** One Chromium for the enclosing suite: opened before its tests, closed after them. */
export function useBrowser(): SuiteBrowser {
  let session: BrowserSession | null = null;
  beforeAll(async () => {
    session = await openBrowser();
  });
  afterAll(async () => {
    await session?.close();
    session = null;
  });
  const open = (): BrowserSession => {
    if (!session) throw new Error("the browser is only open inside the suite's tests");
    return session;
  };
  return {
    get page() {
      return open().page;
    },
    get context() {
      return open().context;
    },
    get tag() {
      return /\[(\w+)\]/.exec(expect.getState().currentTestName ?? '')?.[1] ?? 'system';
    },
  };
}

/**
 * Signs in on the dashboard page `path` with `token`, as a person would (the Token field and the
 * Sign in button), after forgetting any earlier token of this tab; waits until the header names
 * `who`.
 */
export async function signIn(page: Page, url: string, token: string, who: string, path = '/jobs'): Promise<void> {
  await page.goto(url + path);
  await page.evaluate('sessionStorage.clear()');
  // Again, not a reload: the token signed in before may have moved the page elsewhere meanwhile.
  await page.goto(url + path);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('identity').textContent()).toContain(who);
}

/** Writes `test-output/screenshots/<name>.png` (whole page). */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Defines the suite when Chromium and the built dashboard are there (CI fails without them). */
export function describeBrowser(name: string, fn: () => void): void {
  const problem =
    chromiumProblem() ?? (existsSync(join(WEB_DIR, 'index.html')) ? null : `the dashboard is not built in ${WEB_DIR} (run npm run build)`);
  if (problem === null) {
    describe(name, fn);
  } else if (IN_CI) {
    describe(name, () => {
      it('needs Chromium and the built dashboard', () => {
        throw new Error(`${problem}; CI is set, so this suite must not be skipped`);
      });
    });
  } else {
    console.warn(`[browser] SKIPPING "${name}": ${problem}`);
    describe.skip(name, fn);
  }
}
