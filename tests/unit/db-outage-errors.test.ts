/**
 * Telling a database outage from a bug, wherever the driver's error sits (drizzle wraps pg's as
 * `cause`), the HTTP edge's answer to it, and the once-per-outage log of background loops. Pure.
 */
import { describe, expect, it, vi } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isWmsError, WmsError } from '../../core/errors.js';
import { asDbUnavailable, DbOutageLog, isDbUnavailableError } from '../../db/index.js';
import { errorHandler } from '../../services/plugins/errors.js';

/** As drizzle throws it: "Failed query: <sql> params: ...", the driver's error as cause. */
function wrapped(cause: unknown): Error {
  return Object.assign(new Error('Failed query: select 1\nparams: '), { query: 'select 1', params: [], cause });
}
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });
const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -111, syscall: 'connect' });

describe('isDbUnavailableError / asDbUnavailable', () => {
  const outages: [string, unknown][] = [
    ['57P01 admin shutdown (pg_ctl -m fast)', pgError('57P01', 'terminating connection due to administrator command')],
    ['57P02 crash shutdown', pgError('57P02', 'terminating connection because of crash of another server process')],
    ['57P03 cannot connect now (starting up)', pgError('57P03', 'the database system is starting up')],
    ['53300 too many connections', pgError('53300', 'sorry, too many clients already')],
    ['08006 connection failure', pgError('08006', 'connection failure')],
    ['08P01 protocol violation', pgError('08P01', 'protocol violation')],
    ['ECONNREFUSED', errno('ECONNREFUSED')],
    ['ECONNRESET', errno('ECONNRESET')],
    ['EPIPE', errno('EPIPE')],
    ['ETIMEDOUT', errno('ETIMEDOUT')],
    ['Connection terminated unexpectedly (pg_ctl -m immediate)', new Error('Connection terminated unexpectedly')],
    ['a broken client reused', new Error('Client has encountered a connection error and is not queryable')],
    ['the pool cannot connect in time', new Error('timeout exceeded when trying to connect')],
    [
      'a refused dual-stack connect (AggregateError)',
      Object.assign(new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' }),
    ],
  ];
  for (const [name, driverError] of outages) {
    it(`recognises ${name}, bare, wrapped by drizzle, and wrapped twice`, () => {
      for (const e of [driverError, wrapped(driverError), new Error('while submitting', { cause: wrapped(driverError) })]) {
        expect(isDbUnavailableError(e)).toBe(true);
        const m = asDbUnavailable(e);
        expect(isWmsError(m) && m.code).toBe('WMS_DB_UNAVAILABLE');
        expect(isWmsError(m) && m.retryable).toBe(true);
        expect((m as Error).cause).toBe(e);
        // The driver's words, never drizzle's "Failed query: <SQL>".
        expect((m as Error).message).not.toMatch(/Failed query|select 1/);
      }
    });
  }

  it('a wrapped AggregateError without a code of its own', () => {
    const e = wrapped(new AggregateError([errno('ECONNREFUSED')], 'connect failed'));
    expect(isDbUnavailableError(e)).toBe(true);
  });

  it('leaves other errors unchanged: bad queries, input errors, bugs, non-errors', () => {
    const others: unknown[] = [
      wrapped(pgError('23505', 'duplicate key value violates unique constraint')),
      wrapped(pgError('22P02', 'invalid input syntax for type integer')),
      wrapped(pgError('42P01', 'relation "jobs" does not exist')),
      // A SQLSTATE that is not an outage wins over a message that looks like one.
      wrapped(pgError('XX000', 'Connection terminated by a trigger')),
      new TypeError('cannot read properties of undefined'),
      new WmsError('WMS_JOB_NOT_FOUND', 'job 1 not found'),
      'a string',
      null,
      undefined,
    ];
    for (const e of others) {
      expect(isDbUnavailableError(e)).toBe(false);
      expect(asDbUnavailable(e)).toBe(e);
    }
  });

  it('a WMS_DB_UNAVAILABLE WmsError is kept as it is, and counts when it is a cause', () => {
    const w = new WmsError('WMS_DB_UNAVAILABLE', 'cannot reach the database', { retryable: true });
    expect(asDbUnavailable(w)).toBe(w);
    expect(isDbUnavailableError(new Error('tick failed', { cause: w }))).toBe(true);
  });

  it('stops on cause cycles and deep chains', () => {
    const a: Error & { cause?: unknown } = new Error('a');
    const b: Error & { cause?: unknown } = new Error('b', { cause: a });
    a.cause = b;
    expect(isDbUnavailableError(a)).toBe(false);
    let deep: unknown = errno('ECONNREFUSED');
    for (let i = 0; i < 20; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(isDbUnavailableError(deep)).toBe(false);
  });
});

describe('the HTTP edge', () => {
  function handle(err: unknown) {
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
    const log = { error: vi.fn(), warn: vi.fn(), info: vi.fn() };
    errorHandler(err, { log, routeOptions: {} } as unknown as FastifyRequest, reply as unknown as FastifyReply);
    return { ...state, log };
  }

  it('a drizzle-wrapped outage is 503 WMS_DB_UNAVAILABLE with Retry-After, never 500, and echoes nothing of the driver', () => {
    for (const driverError of [
      pgError('57P01', 'terminating connection due to administrator command'),
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      errno('ECONNREFUSED'),
    ]) {
      const r = handle(wrapped(driverError));
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect(r.body).toEqual({ code: 'WMS_DB_UNAVAILABLE', message: 'database unavailable, retry later' });
      expect(r.log.error).not.toHaveBeenCalled();
    }
  });

  it('a wrapped query error that is not an outage is still a 500', () => {
    const r = handle(wrapped(pgError('42P01', 'relation "jobs" does not exist')));
    expect(r.status).toBe(500);
    expect((r.body as { code: string }).code).toBe('WMS_INTERNAL');
  });
});

describe('DbOutageLog', () => {
  it('says an outage once when it starts and once when it ends, with how long it lasted', () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const log = new DbOutageLog('event stream', { warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`) }, () => now);
    log.ok();
    expect(lines).toEqual([]);
    expect(log.down).toBe(false);
    for (let i = 0; i < 50; i++) {
      expect(log.failed(wrapped(pgError('57P01', 'terminating connection due to administrator command')))).toBe(true);
      now += 300;
    }
    expect(log.down).toBe(true);
    log.ok();
    log.ok();
    expect(lines).toEqual([
      'warn event stream: database unavailable, retrying (terminating connection due to administrator command)',
      'info event stream: database available again after 15 s',
    ]);
    // A second outage is said again.
    expect(log.failed(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(lines).toHaveLength(3);
  });

  it('answers false for an error that is not an outage, and logs nothing for it', () => {
    const lines: string[] = [];
    const log = new DbOutageLog('agents', { warn: (m) => lines.push(m), info: (m) => lines.push(m) });
    expect(log.failed(new TypeError('bug'))).toBe(false);
    expect(log.down).toBe(false);
    expect(lines).toEqual([]);
  });
});
