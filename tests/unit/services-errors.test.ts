import { describe, expect, it, vi } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, WmsError, jdlError } from '../../core/errors.js';
import { sqlStateOf } from '../../db/index.js';
import { errorHandler, HTTP_STATUS, logSafeError } from '../../services/plugins/errors.js';

function fakeReply() {
  const state = { status: 0, headers: {} as Record<string, string>, body: undefined as unknown };
  const reply = {
    code(s: number) {
      state.status = s;
      return reply;
    },
    header(k: string, v: string) {
      state.headers[k.toLowerCase()] = v;
      return reply;
    },
    send(b: unknown) {
      state.body = b;
      return reply;
    },
  };
  return { reply: reply as unknown as FastifyReply, state };
}

function fakeRequest() {
  const log = { error: vi.fn(), warn: vi.fn(), info: vi.fn() };
  return { request: { log, routeOptions: { bodyLimit: 1024 * 1024 } } as unknown as FastifyRequest, log };
}

/** An error shaped as drizzle throws it: the failed query and every parameter in its message, the driver's error as cause. */
function drizzleError(sqlState: string, param: string): Error {
  const cause = Object.assign(new Error(`invalid input syntax: "${param.slice(0, 100)}"`), { code: sqlState, severity: 'ERROR' });
  return Object.assign(new Error(`Failed query: insert into jobs (jdl) values ($1)\nparams: ${param}`), {
    query: 'insert into jobs (jdl) values ($1)',
    params: [param],
    cause,
  });
}

function handle(err: unknown) {
  const { reply, state } = fakeReply();
  const { request, log } = fakeRequest();
  errorHandler(err, request, reply);
  return { ...state, log };
}

describe('HTTP_STATUS', () => {
  it('maps every code to a 4xx or 5xx status', () => {
    for (const code of ERROR_CODES) {
      expect(HTTP_STATUS[code], code).toBeGreaterThanOrEqual(400);
      expect(HTTP_STATUS[code], code).toBeLessThan(600);
    }
  });
});

describe('errorHandler', () => {
  it('JDL errors: 400 with located problems', () => {
    const r = handle(jdlError('WMS_JDL_SYNTAX', [{ message: 'missing ;', line: 3, column: 7, attribute: 'CPUTime' }]));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      code: 'WMS_JDL_SYNTAX',
      message: 'missing ; at line 3, column 7',
      problems: [{ message: 'missing ;', line: 3, column: 7, attribute: 'CPUTime' }],
    });
  });

  it('domain errors get their status', () => {
    expect(handle(new WmsError('WMS_JOB_NOT_FOUND', 'no job 3')).status).toBe(404);
    expect(handle(new WmsError('WMS_FORBIDDEN', 'no')).status).toBe(403);
    expect(handle(new WmsError('WMS_AUTH_MISSING', 'no')).status).toBe(401);
    expect(handle(new WmsError('WMS_SANDBOX_TOO_LARGE', 'big')).status).toBe(413);
  });

  it('database unavailable: 503 with Retry-After', () => {
    const r = handle(new WmsError('WMS_DB_UNAVAILABLE', 'down'));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    const refused = handle(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));
    expect(refused.status).toBe(503);
    expect((refused.body as { code: string }).code).toBe('WMS_DB_UNAVAILABLE');
  });

  it('fastify validation errors: 400 WMS_VALIDATION listing every problem', () => {
    const err = Object.assign(new Error('body/a must be >= 1'), {
      statusCode: 400,
      validationContext: 'body',
      validation: [
        { instancePath: '/a', keyword: 'minimum', params: { limit: 1 }, message: 'must be >= 1' },
        { instancePath: '', keyword: 'required', params: { missingProperty: 'site' }, message: "must have required property 'site'" },
        {
          instancePath: '',
          keyword: 'additionalProperties',
          params: { additionalProperty: 'x' },
          message: 'must NOT have additional properties',
        },
      ],
    });
    const r = handle(err);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      code: 'WMS_VALIDATION',
      problems: [
        { path: 'body/a', message: 'must be >= 1' },
        { path: 'body/site', message: 'is required' },
        { path: 'body/x', message: 'is not allowed' },
      ],
    });
  });

  it('unknown errors: 500 internal error, logged, nothing echoed', () => {
    const r = handle(new Error('SELECT secret FROM table failed at /srv/app.ts:12'));
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ code: 'WMS_INTERNAL', message: 'internal error' });
    expect(r.log.error).toHaveBeenCalled();
    const config = handle(new WmsError('WMS_CONFIG', 'secret path /etc/x'));
    expect(config.body).toEqual({ code: 'WMS_INTERNAL', message: 'internal error' });
  });

  it("fastify's own client errors keep their status", () => {
    const r = handle(Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }));
    expect(r.status).toBe(415);
    expect((r.body as { code: string }).code).toBe('WMS_VALIDATION');
  });

  it('bodies over their limit: 413 WMS_PAYLOAD_TOO_LARGE naming the limit', () => {
    const r = handle(Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }));
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ code: 'WMS_PAYLOAD_TOO_LARGE', message: 'request body is over the 1.0 MiB limit of this route' });
    expect(handle(new WmsError('WMS_PAYLOAD_TOO_LARGE', 'JDL of 10.0 MiB is over the 1.0 MiB limit (jdlMaxBytes)')).status).toBe(413);
  });

  it('rate limited: 429 with the Retry-After its details give', () => {
    const r = handle(new WmsError('WMS_RATE_LIMITED', 'too many requests', { details: { retryAfterSeconds: 42 } }));
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('42');
    expect(r.body).toEqual({ code: 'WMS_RATE_LIMITED', message: 'too many requests' });
  });

  it('a part not ready: 503 with its own message and Retry-After', () => {
    const r = handle(new WmsError('WMS_UNAVAILABLE', 'the pilot bundle is not built (run npm run build)'));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(r.body).toEqual({ code: 'WMS_UNAVAILABLE', message: 'the pilot bundle is not built (run npm run build)' });
  });

  it('the safety net: database input errors are 400 with a generic message, never the value or the query', () => {
    const cases: [string, RegExp][] = [
      ['22003', /a number is out of range/],
      ['22021', /cannot be stored/],
      ['22P05', /cannot be stored/],
      ['22008', /date or time/],
      ['22001', /too long/],
      ['22P02', /not valid/],
      ['54000', /too large/],
      ['54001', /nested too deeply/],
    ];
    for (const [state, message] of cases) {
      const r = handle(drizzleError(state, 'SECRET-VALUE'));
      expect(r.status, state).toBe(400);
      const body = r.body as { code: string; message: string };
      expect(body.code, state).toBe('WMS_VALIDATION');
      expect(body.message, state).toMatch(message);
      expect(JSON.stringify(body), state).not.toMatch(/SECRET|insert|params/);
      expect(r.log.warn, state).toHaveBeenCalled();
    }
    // Other database errors stay 500 (a bug of ours, not bad input): unique violation, syntax error.
    expect(handle(drizzleError('23505', 'x')).status).toBe(500);
    expect(handle(drizzleError('42601', 'x')).status).toBe(500);
    expect(sqlStateOf(drizzleError('22003', 'x'))).toBe('22003');
    expect(sqlStateOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBeNull();
  });

  it('a date out of range (Invalid time value): 400, not 500', () => {
    let thrown: unknown;
    try {
      new Date(1e30).toISOString();
    } catch (e) {
      thrown = e;
    }
    const r = handle(thrown);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ code: 'WMS_VALIDATION', message: 'invalid input: a date or time is out of range' });
  });
});

describe('logSafeError', () => {
  it('drops the parameters drizzle puts in its message, keeps type, code and stack frames, a few KiB at most', () => {
    const huge = 'J'.repeat(15 * 1024 * 1024);
    const out = logSafeError(drizzleError('22021', huge));
    const text = JSON.stringify(out);
    expect(text.length).toBeLessThan(8192);
    expect(text).not.toContain(
      'JJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJ',
    );
    expect(out.message).toBe('Failed query: insert into jobs (jdl) values ($1)');
    expect(out['params']).toBeUndefined();
    expect(out['query']).toBe('insert into jobs (jdl) values ($1)');
    expect((out['cause'] as { code: string }).code).toBe('22021');
    expect(out.stack).toMatch(/^at /);
    expect(out.stack).not.toContain('Failed query');
  });

  it('truncates any long message, and handles non-errors', () => {
    const out = logSafeError(new Error('x'.repeat(100_000)));
    expect(out.message.length).toBeLessThan(1200);
    expect(out.message).toMatch(/more characters\)$/);
    expect(logSafeError('just text').message).toBe('just text');
  });
});
