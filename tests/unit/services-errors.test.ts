import { describe, expect, it, vi } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, WmsError, jdlError } from '../../core/errors.js';
import { errorHandler, HTTP_STATUS } from '../../services/plugins/errors.js';

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
  return { request: { log } as unknown as FastifyRequest, log };
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
        { instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: 'x' }, message: 'must NOT have additional properties' },
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
});
