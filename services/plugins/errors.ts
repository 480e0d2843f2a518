/**
 * The one error handler and the one not-found handler. Domain errors carry no HTTP status:
 * `HTTP_STATUS` maps each code, and is an exhaustive Record so a new code forces a decision.
 *
 * - WmsError → its status, `{ code, message, problems? }` (JDL errors list each problem with
 *   line and column; WMS_DB_UNAVAILABLE and WMS_UNAVAILABLE add `Retry-After`, WMS_RATE_LIMITED
 *   its own).
 * - fastify validation errors → 400 WMS_VALIDATION listing every problem (path + message).
 * - other fastify client errors (bad JSON, wrong media type) → their 4xx; a body over its
 *   limit → 413 WMS_PAYLOAD_TOO_LARGE naming the limit.
 * - the safety net: a value the schemas let through but the database refuses (SQLSTATE class
 *   22 "data exception": out of range, NUL byte, bad date; 54000 too large to index; 54001
 *   nested too deep) and a date out of JavaScript's range → 400 WMS_VALIDATION with a generic
 *   message that echoes nothing of the input. No bad input is ever a 500.
 * - anything else → 500 WMS_INTERNAL "internal error", logged, never echoed.
 *
 * Logs: `logSafeError` is the `err` serializer of the app's logger. It drops drizzle's
 * `params` (a JDL of 15 MiB once made 45 MiB of log), cuts the failed query out of messages
 * and truncates every text, so one failed request logs at most a few KiB.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isWmsError, type ErrorCode, type JdlProblem } from '../../core/errors.js';
import { asDbUnavailable, sqlStateOf } from '../../db/index.js';
import type { ErrorBody, Problem } from '../../api/index.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  WMS_JDL_SYNTAX: 400,
  WMS_JDL_INVALID: 400,
  WMS_JDL_PARAMETRIC: 400,
  WMS_VALIDATION: 400,
  WMS_JOB_NOT_FOUND: 404,
  WMS_JOB_STATE: 409,
  WMS_NO_MATCH: 404,
  WMS_SITE_BANNED: 403,
  WMS_SANDBOX_NOT_FOUND: 404,
  WMS_SANDBOX_CHECKSUM: 400,
  WMS_SANDBOX_TOO_LARGE: 413,
  WMS_PAYLOAD_TOO_LARGE: 413,
  WMS_RATE_LIMITED: 429,
  WMS_AUTH_MISSING: 401,
  WMS_AUTH_INVALID: 401,
  WMS_FORBIDDEN: 403,
  WMS_NOT_FOUND: 404,
  WMS_CONFLICT: 409,
  WMS_JOB_NOT_HELD: 409,
  WMS_DB_UNAVAILABLE: 503,
  WMS_UNAVAILABLE: 503,
  WMS_CONFIG: 500,
  WMS_INTERNAL: 500,
};

/** Seconds a client should wait before retrying when the database is down. */
export const RETRY_AFTER_SECONDS = 5;

// ---------------------------------------------------------------------------------------------
// The safety net: input errors raised by the database (or by Date) are the client's, not ours.

/**
 * A generic description of a database input error (class 22, 54000, 54001), or null for any
 * other state. Never quotes the database's message: it may echo the value or the query.
 */
export function databaseInputProblem(state: string | null): string | null {
  if (state === null) return null;
  switch (state) {
    case '22001':
      return 'a text value is too long';
    case '22003':
      return 'a number is out of range';
    case '22021':
    case '22P05':
      return 'a text value holds a character that cannot be stored (e.g. a NUL byte)';
    case '22007':
    case '22008':
      return 'a date or time is malformed or out of range';
    case '54000':
      return 'a value is too large to store or index';
    case '54001':
      return 'the input is nested too deeply';
  }
  return state.startsWith('22') ? 'a value is not valid' : null;
}

/** A JavaScript range error caused by input: an invalid Date, or recursion on deep input. */
function rangeProblem(e: unknown): string | null {
  if (!(e instanceof RangeError)) return null;
  if (/invalid time value|invalid date/i.test(e.message)) return 'a date or time is out of range';
  if (/maximum call stack/i.test(e.message)) return 'the input is nested too deeply';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Logging errors without their parameters

/** Longest text kept per field of a logged error (characters). */
export const LOG_TEXT_MAX = 1024;
const STACK_FRAMES_MAX = 12;

function cut(text: string, max = LOG_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The message without what a driver appends after it (drizzle: `\nparams: …`), truncated. */
function safeMessage(message: string): string {
  const params = message.indexOf('\nparams:');
  return cut(params >= 0 ? message.slice(0, params) : message);
}

const LOGGED_FIELDS = ['code', 'statusCode', 'severity', 'detail', 'hint', 'where', 'table', 'column', 'constraint', 'routine'] as const;

/**
 * The `err` serializer of the app's logger: type, message, code and the stack frames (never
 * the message again inside the stack), the driver's fields truncated, `query` truncated,
 * `params` dropped; the cause chain the same way (3 levels). A few KiB at most.
 */
export interface LoggedError {
  type: string;
  message: string;
  stack: string;
  [key: string]: unknown;
}

export function logSafeError(err: unknown, depth = 0): LoggedError {
  if (typeof err !== 'object' || err === null) return { type: typeof err, message: cut(String(err)), stack: '' };
  const e = err as Error & Record<string, unknown>;
  const out: LoggedError = {
    type: e.constructor?.name ?? 'Error',
    message: safeMessage(typeof e.message === 'string' ? e.message : String(e.message)),
    stack: '',
  };
  for (const k of LOGGED_FIELDS) {
    const v = e[k];
    if (typeof v === 'string' || typeof v === 'number') out[k] = typeof v === 'string' ? cut(v, 256) : v;
  }
  if (typeof e.query === 'string') out['query'] = cut(e.query, 512);
  if (typeof e.stack === 'string') {
    const frames = e.stack.split('\n').filter((l) => /^\s+at /.test(l));
    out['stack'] = frames
      .slice(0, STACK_FRAMES_MAX)
      .map((l) => cut(l.trim(), 256))
      .join('\n');
  }
  if (e.cause !== undefined && depth < 3) out['cause'] = logSafeError(e.cause, depth + 1);
  return out;
}

/** `1.0 MiB`, `12.5 KiB`, `300 bytes`. */
export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
}

function isJdlProblem(p: unknown): p is JdlProblem {
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof (p as JdlProblem).message === 'string' &&
    typeof (p as JdlProblem).line === 'number' &&
    typeof (p as JdlProblem).column === 'number'
  );
}

/** The problems carried in a WmsError's details, kept to the fields the API documents. */
function problemsOf(details: unknown): Problem[] | undefined {
  const list = (details as { problems?: unknown } | null | undefined)?.problems;
  if (!Array.isArray(list)) return undefined;
  return list.map((p: unknown): Problem => {
    const o = (p ?? {}) as Record<string, unknown>;
    const out: Problem = { message: typeof o['message'] === 'string' ? o['message'] : String(p) };
    if (isJdlProblem(p)) {
      out.line = p.line;
      out.column = p.column;
    }
    if (typeof o['attribute'] === 'string') out.attribute = o['attribute'];
    if (typeof o['path'] === 'string') out.path = o['path'];
    // A list submission may say which JDL a problem belongs to (index, 0-based).
    for (const k of ['jdl', 'index', 'jdlIndex']) {
      if (typeof o[k] === 'number') out.jdl = o[k] as number;
    }
    return out;
  });
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** One readable problem per schema violation, with the path inside the request. */
function validationProblems(err: FastifyError): Problem[] {
  const context = err.validationContext ?? 'request';
  return ((err.validation ?? []) as AjvIssue[]).map((v) => {
    const params = v.params ?? {};
    let path = `${context}${v.instancePath ?? ''}`;
    let message = v.message ?? 'is invalid';
    if (v.keyword === 'required' && typeof params['missingProperty'] === 'string') {
      path = `${path}/${params['missingProperty']}`;
      message = 'is required';
    } else if (v.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
      path = `${path}/${params['additionalProperty']}`;
      message = 'is not allowed';
    } else if (v.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
      message = `must be one of ${(params['allowedValues'] as unknown[]).join(', ')}`;
    }
    return { path, message };
  });
}

function send(reply: FastifyReply, status: number, body: ErrorBody, retryAfterSeconds?: number): void {
  if (status === 503) reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
  if (status === 429) reply.header('Retry-After', String(Math.max(1, Math.ceil(retryAfterSeconds ?? 1))));
  if (status === 413) reply.header('Connection', 'close');
  void reply.code(status).send(body);
}

/** Builds the `{ code, message, problems? }` answer for any thrown value. */
export function errorHandler(thrown: unknown, request: FastifyRequest, reply: FastifyReply): void {
  // A driver error saying the database cannot be reached becomes WMS_DB_UNAVAILABLE (503).
  const err = asDbUnavailable(thrown);
  if (isWmsError(err)) {
    const status = HTTP_STATUS[err.code] ?? 500;
    if (err.code === 'WMS_UNAVAILABLE') {
      // A part not ready (the pilot bundle not built, no archive check could start): its message
      // says what to do, nothing internal; logged (with its cause) for the operator.
      request.log.warn({ err }, 'service part unavailable');
      send(reply, 503, { code: err.code, message: err.message });
      return;
    }
    if (status >= 500 && err.code !== 'WMS_DB_UNAVAILABLE') {
      request.log.error({ err }, 'request failed');
      send(reply, 500, { code: 'WMS_INTERNAL', message: 'internal error' });
      return;
    }
    if (err.code === 'WMS_DB_UNAVAILABLE') {
      // Logged in full; the client learns only that it should retry (no host, no driver text).
      request.log.warn({ err }, 'database unavailable');
      send(reply, 503, { code: err.code, message: 'database unavailable, retry later' });
      return;
    }
    const body: ErrorBody = { code: err.code, message: err.message };
    const problems = problemsOf(err.details);
    if (problems) body.problems = problems;
    const retryAfter = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    send(reply, status, body, typeof retryAfter === 'number' ? retryAfter : undefined);
    return;
  }
  const inputProblem = databaseInputProblem(sqlStateOf(err)) ?? rangeProblem(err);
  if (inputProblem !== null) {
    // The schemas should have refused it: logged (without the values) so the gap gets closed.
    request.log.warn({ err }, 'input refused by the database');
    send(reply, 400, { code: 'WMS_VALIDATION', message: `invalid input: ${inputProblem}` });
    return;
  }
  const fe = err as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    const problems = validationProblems(fe);
    const summary = problems.map((p) => `${p.path} ${p.message}`).join('; ');
    send(reply, 400, { code: 'WMS_VALIDATION', message: `invalid request: ${summary}`, problems });
    return;
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) {
    const limit = request.routeOptions?.bodyLimit;
    const message =
      typeof limit === 'number' ? `request body is over the ${formatBytes(limit)} limit of this route` : 'request body is too large';
    send(reply, 413, { code: 'WMS_PAYLOAD_TOO_LARGE', message });
    return;
  }
  if (status >= 400 && status < 500) {
    // fastify's own client errors: malformed JSON, unsupported media type.
    const code: ErrorCode = status === 404 ? 'WMS_NOT_FOUND' : status === 429 ? 'WMS_RATE_LIMITED' : 'WMS_VALIDATION';
    send(reply, status, { code, message: cut(fe.message, 512) });
    return;
  }
  request.log.error({ err }, 'unexpected error');
  send(reply, 500, { code: 'WMS_INTERNAL', message: 'internal error' });
}

/** Installs the error and not-found handlers on the root instance. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      code: 'WMS_NOT_FOUND',
      message: `no route ${request.method} ${request.url.split('?')[0]}`,
    } satisfies ErrorBody);
  });
}
