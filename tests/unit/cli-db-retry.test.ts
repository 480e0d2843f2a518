/**
 * The CLI's HTTP client through a database outage (undici's MockAgent plays the server): reads
 * retry on 503 WMS_DB_UNAVAILABLE, saying so, then succeed or give up with a clear error; a
 * submission (POST) is never sent twice; a server that never answered fails at once; the
 * submission's message says what a 503 means. No I/O besides the mock.
 */
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { ApiClient, nextWait } from '../../cli/client.js';
import { retrySecondsFrom } from '../../cli/command.js';
import { submissionFailure } from '../../cli/commands/job.js';
import { CliError, formatError, UsageError } from '../../cli/errors.js';

const URL_ = 'http://wms.test';
const DOWN = { code: 'WMS_DB_UNAVAILABLE', message: 'database unavailable, retry later' };

function setUp(maxWaitSeconds = 120) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(URL_);
  const said: string[] = [];
  const slept: number[] = [];
  const client = new ApiClient({
    url: URL_,
    token: 't',
    dispatcher: agent,
    retry: { say: (l) => said.push(l), maxWaitSeconds, sleep: async (ms) => void slept.push(ms) },
  });
  return { agent, pool, client, said, slept };
}

describe('nextWait', () => {
  it('doubles from 1 s to 15 s, never below Retry-After, within the budget', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => nextWait(s, 0, 1000))).toEqual([1, 2, 4, 8, 15, 15, 15]);
    expect(nextWait(0, 0, 1000, 5)).toBe(5);
    expect(nextWait(0, 0, 1000, 600)).toBe(15);
    expect(nextWait(4, 117, 120)).toBe(3);
    expect(nextWait(4, 120, 120)).toBeNull();
    expect(nextWait(0, 0, 0)).toBeNull();
  });

  it('WMS_RETRY_SECONDS: default 120, a whole number, else a usage error', () => {
    expect(retrySecondsFrom({})).toBe(120);
    expect(retrySecondsFrom({ WMS_RETRY_SECONDS: '0' })).toBe(0);
    expect(retrySecondsFrom({ WMS_RETRY_SECONDS: '30' })).toBe(30);
    expect(() => retrySecondsFrom({ WMS_RETRY_SECONDS: 'soon' })).toThrow(UsageError);
  });
});

describe('ApiClient through an outage', () => {
  it('a read retries on 503 WMS_DB_UNAVAILABLE, saying "database unavailable, retrying in N s", then succeeds', async () => {
    const { pool, client, said, slept } = setUp();
    pool
      .intercept({ path: '/api/jobs', method: 'GET' })
      .reply(503, DOWN, { headers: { 'retry-after': '5' } })
      .times(2);
    pool.intercept({ path: '/api/jobs', method: 'GET' }).reply(200, { jobs: [], total: 0 });
    await expect(client.json('GET', '/api/jobs')).resolves.toEqual({ jobs: [], total: 0 });
    expect(said).toEqual(['wms: database unavailable, retrying in 5 s', 'wms: database unavailable, retrying in 5 s']);
    expect(slept).toEqual([5000, 5000]);
  });

  it('gives up after the budget with a clear CliError (code WMS_DB_UNAVAILABLE), one line, no stack', async () => {
    const { pool, client, said } = setUp(20);
    pool
      .intercept({ path: '/api/jobs', method: 'GET' })
      .reply(503, DOWN, { headers: { 'retry-after': '5' } })
      .persist();
    const e = await client.json('GET', '/api/jobs').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe('WMS_DB_UNAVAILABLE');
    expect(formatError(e)).toEqual([
      "wms: database unavailable: the server's database did not come back within 20 s of retries; try again later (WMS_RETRY_SECONDS waits longer)",
    ]);
    // Waits of max(1, 2, 4, 8 doubling; Retry-After 5), cut to the 20 s budget: 5 + 5 + 5 + 5.
    expect(said).toEqual(Array(4).fill('wms: database unavailable, retrying in 5 s'));
  });

  it('a sandbox upload (PUT, content-addressed) is retried with a fresh body', async () => {
    const { pool, client, said } = setUp();
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'wms-retry-'));
    try {
      await writeFile(join(dir, 'a.tar.gz'), 'bytes');
      const sha = 'a'.repeat(64);
      pool.intercept({ path: `/api/sandboxes/${sha}`, method: 'PUT' }).reply(503, DOWN, { headers: { 'retry-after': '1' } });
      pool.intercept({ path: `/api/sandboxes/${sha}`, method: 'PUT' }).reply(201, { sha256: sha, size: 5 });
      await expect(client.uploadSandbox(sha, join(dir, 'a.tar.gz'), 5)).resolves.toEqual({ sha256: sha, size: 5 });
      expect(said).toEqual(['wms: database unavailable, retrying in 1 s']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a submission (POST) is never sent twice: one 503, the error at once', async () => {
    const { pool, client, said } = setUp();
    let sent = 0;
    pool
      .intercept({ path: '/api/jobs', method: 'POST', body: () => (sent++, true) })
      .reply(503, DOWN, { headers: { 'retry-after': '5' } })
      .persist();
    const e = await client.json('POST', '/api/jobs', { jdl: '[]' }).catch((x: unknown) => x);
    expect(sent).toBe(1);
    expect(said).toEqual([]);
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe('WMS_DB_UNAVAILABLE');
    expect(submissionFailure(e as CliError)).toMatch(
      /^database unavailable: the server says the submission was not applied \(its transaction did not commit\); submit again once the database is back\. .*"wms job list"/,
    );
  });

  it('a POST marked idempotent (explain) is retried', async () => {
    const { pool, client, said } = setUp();
    pool.intercept({ path: '/api/match/explain', method: 'POST' }).reply(503, DOWN, { headers: { 'retry-after': '1' } });
    pool.intercept({ path: '/api/match/explain', method: 'POST' }).reply(200, { ok: true });
    await expect(client.json('POST', '/api/match/explain', { site: 'X' }, { idempotent: true })).resolves.toEqual({ ok: true });
    expect(said).toHaveLength(1);
  });

  it('other 503s and other errors are not retried and keep their message', async () => {
    const { pool, client, said } = setUp();
    pool
      .intercept({ path: '/api/pilot-bundle', method: 'GET' })
      .reply(503, { code: 'WMS_UNAVAILABLE', message: 'the pilot bundle is not built' });
    const e = await client.json('GET', '/api/pilot-bundle').catch((x: unknown) => x);
    expect((e as CliError).code).toBe('WMS_UNAVAILABLE');
    expect((e as CliError).message).toBe('the pilot bundle is not built');
    pool.intercept({ path: '/api/jobs/9', method: 'GET' }).reply(404, { code: 'WMS_JOB_NOT_FOUND', message: 'job 9 not found' });
    await expect(client.json('GET', '/api/jobs/9')).rejects.toMatchObject({ code: 'WMS_JOB_NOT_FOUND' });
    expect(said).toEqual([]);
  });

  it('without a retry policy (tests, the token bootstrap) a 503 fails at once', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent.get(URL_).intercept({ path: '/api/jobs', method: 'GET' }).reply(503, DOWN);
    const client = new ApiClient({ url: URL_, token: 't', dispatcher: agent });
    await expect(client.json('GET', '/api/jobs')).rejects.toMatchObject({
      code: 'WMS_DB_UNAVAILABLE',
      message: 'database unavailable, retry later',
    });
  });

  it('a server that never answered fails at once (UNREACHABLE); one that answered before is waited for', async () => {
    const { pool, client, said } = setUp();
    pool
      .intercept({ path: '/api/jobs', method: 'GET' })
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await expect(client.json('GET', '/api/jobs')).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(said).toEqual([]);

    pool.intercept({ path: '/api/health', method: 'GET' }).reply(200, { status: 'ok' });
    await client.json('GET', '/api/health');
    pool
      .intercept({ path: '/api/jobs', method: 'GET' })
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    pool.intercept({ path: '/api/jobs', method: 'GET' }).reply(200, { jobs: [] });
    await expect(client.json('GET', '/api/jobs')).resolves.toEqual({ jobs: [] });
    expect(said).toEqual(['wms: server unreachable (ECONNREFUSED), retrying in 1 s']);
  });
});
