/**
 * The shared Node client (io/json-client.ts, io/api-error.ts, io/retry.ts) with undici's
 * MockAgent as the server: JSON in and out with the bearer token read at each call, every
 * failure one ApiError (the server's code, message, problems, status and Retry-After; status 0
 * and UNREACHABLE without an answer), retries only as the call's loop says, and the signal.
 */
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { ApiError, errorOfAnswer, noAnswer, retryableLater, UNREACHABLE } from '../../io/api-error.js';
import { JsonClient } from '../../io/json-client.js';
import { quickRetries, retrying } from '../../io/retry.js';

const BASE = 'http://wms.test';

function setUp(token: string | (() => string) = 't1') {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(BASE);
  return { pool, client: new JsonClient({ baseUrl: BASE, token, dispatcher: agent }) };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('JsonClient', () => {
  it('sends JSON with the current bearer token and answers the parsed body (undefined when empty)', async () => {
    let token = 'first';
    const { pool, client } = setUp(() => token);
    const seen: string[] = [];
    pool
      .intercept({
        path: '/api/jobs',
        method: 'POST',
        headers: (h) => (seen.push(String(h['authorization'])), true),
        body: (b) => JSON.parse(b).jdl === '[]',
      })
      .reply(201, { jobIds: [1] });
    await expect(client.json('POST', '/api/jobs', { json: { jdl: '[]' } })).resolves.toEqual({ jobIds: [1] });
    token = 'renewed';
    pool.intercept({ path: '/api/jobs/1', method: 'DELETE', headers: (h) => (seen.push(String(h['authorization'])), true) }).reply(204, '');
    await expect(client.json('DELETE', '/api/jobs/1')).resolves.toBeUndefined();
    expect([...new Set(seen)]).toEqual(['Bearer first', 'Bearer renewed']); // the mock may match a request more than once
    expect(client.answered).toBe(true);
  });

  it('an answer outside 2xx is an ApiError with the status, code, problems, Retry-After and the call in its message', async () => {
    const { pool, client } = setUp();
    pool
      .intercept({ path: '/api/jobs', method: 'POST' })
      .reply(400, { code: 'WMS_JDL_SYNTAX', message: 'missing ;', problems: [{ message: 'missing ;', line: 2, column: 5 }] });
    const e = (await client.json('POST', '/api/jobs', { json: {} }).catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect([e.status, e.code, e.reason, e.message]).toEqual([400, 'WMS_JDL_SYNTAX', 'missing ;', 'POST /api/jobs: 400 missing ;']);
    expect(e.problems).toEqual([{ message: 'missing ;', line: 2, column: 5 }]);
    pool
      .intercept({ path: '/api/jobs', method: 'GET' })
      .reply(503, { code: 'WMS_DB_UNAVAILABLE', message: 'away' }, { headers: { 'retry-after': '5' } });
    await expect(client.json('GET', '/api/jobs')).rejects.toMatchObject({ status: 503, code: 'WMS_DB_UNAVAILABLE', retryAfterSeconds: 5 });
  });

  it('no answer is status 0, code UNREACHABLE, the connection error as the reason; the server never answered', async () => {
    const { pool, client } = setUp();
    pool.intercept({ path: '/api/health', method: 'GET' }).replyWithError(refused());
    const e = (await client.json('GET', '/api/health').catch((x: unknown) => x)) as ApiError;
    expect([e.status, e.code, e.reason]).toEqual([0, UNREACHABLE, 'ECONNREFUSED']);
    expect(e.message).toBe(`GET /api/health: cannot reach ${BASE} (ECONNREFUSED)`);
    expect(client.answered).toBe(false);
  });

  it('retries only as the call says, with the same call again; without a loop, one try', async () => {
    const { pool, client } = setUp();
    pool.intercept({ path: '/api/time', method: 'GET' }).reply(503, { code: 'X', message: 'away' });
    await expect(client.json('GET', '/api/time')).rejects.toMatchObject({ status: 503 });
    pool.intercept({ path: '/api/time', method: 'GET' }).reply(502, 'bad gateway');
    pool.intercept({ path: '/api/time', method: 'GET' }).replyWithError(refused());
    pool.intercept({ path: '/api/time', method: 'GET' }).reply(200, { now: 1 });
    const waits: number[] = [];
    const retry = { ...quickRetries([1, 2, 3], retryableLater), onRetry: (_e: unknown, _a: number, w: number) => waits.push(w) };
    await expect(client.json('GET', '/api/time', { retry })).resolves.toEqual({ now: 1 });
    expect(waits).toEqual([1, 2]);
    pool.intercept({ path: '/api/time', method: 'GET' }).reply(403, { code: 'WMS_FORBIDDEN', message: 'no' });
    await expect(client.json('GET', '/api/time', { retry })).rejects.toMatchObject({ status: 403, code: 'WMS_FORBIDDEN' });
    expect(waits).toEqual([1, 2]);
  });

  it('a call past its timeout is unanswered (UNREACHABLE); an aborted signal stops it', async () => {
    const { pool, client } = setUp();
    pool.intercept({ path: '/api/slow', method: 'GET' }).reply(200, {}).delay(5000);
    await expect(client.json('GET', '/api/slow', { timeoutMs: 20 })).rejects.toMatchObject({
      status: 0,
      code: UNREACHABLE,
      reason: 'ETIMEDOUT',
    });
    const stop = new AbortController();
    stop.abort(new Error('the job stopped'));
    pool.intercept({ path: '/api/slow', method: 'GET' }).reply(200, {});
    await expect(client.json('GET', '/api/slow', { signal: stop.signal })).rejects.toMatchObject({
      status: 0,
      code: undefined,
      reason: 'the job stopped',
    });
  });
});

describe('ApiError from an answer', () => {
  it('a proxy page keeps its text in the message, HTTP <status> as the reason', () => {
    const e = errorOfAnswer('GET /x', 502, '<html>bad gateway</html>');
    expect([e.status, e.code, e.reason, e.message]).toEqual([502, undefined, 'HTTP 502', 'GET /x: 502 <html>bad gateway</html>']);
    expect(errorOfAnswer('GET /x', 503, '{}', 'soon').retryAfterSeconds).toBeUndefined();
  });

  it('finds the connection code in causes and aggregated errors', () => {
    const nested = Object.assign(new TypeError('fetch failed'), {
      cause: new AggregateError([new Error('x'), Object.assign(new Error('y'), { code: 'EHOSTUNREACH' })]),
    });
    expect(noAnswer('GET /x', BASE, nested)).toMatchObject({ status: 0, code: UNREACHABLE, reason: 'EHOSTUNREACH' });
    expect(noAnswer('GET /x', BASE, new Error('invalid URL'))).toMatchObject({ status: 0, code: undefined, reason: 'invalid URL' });
  });
});

describe('retrying', () => {
  it('gives up when the loop says so, after waiting what it said, and counts the waits', async () => {
    let tries = 0;
    const slept: number[] = [];
    const seen: number[] = [];
    const e = await retrying(
      async () => {
        tries++;
        throw new ApiError('away', 503);
      },
      { wait: (_e, attempt, waited) => (seen.push(waited), attempt < 2 ? 10 : null), sleep: async (ms) => void slept.push(ms) },
    ).catch((x: unknown) => x);
    expect((e as ApiError).status).toBe(503);
    expect(tries).toBe(3);
    expect(slept).toEqual([10, 10]);
    expect(seen).toEqual([0, 10, 20]);
  });
});
