/**
 * The CLI's HTTP client (undici). Every answer outside 2xx becomes a CliError carrying the
 * server's `{ code, message, problems }`; a server that does not answer becomes a
 * CliError with code `UNREACHABLE` (the token bootstrap falls back to the database on it).
 * The dispatcher is injectable for tests.
 *
 * Outages (`retry` in the options, which `clientFrom` sets): a request that can safely be sent
 * twice (GET, HEAD, PUT, DELETE, and the POSTs a caller marks `idempotent`) is sent again when
 * the server answers 503 WMS_DB_UNAVAILABLE (its database is away), or when its connection is
 * refused or reset after this client already had an answer from it (the server restarting).
 * Each wait is said on stderr (`database unavailable, retrying in 5 s`), doubling from 1 s up
 * to 15 s and never below the server's Retry-After, for `maxWaitSeconds` in all (default 120);
 * then it fails with a clear CliError (code WMS_DB_UNAVAILABLE or UNREACHABLE). A first
 * request that cannot connect at all fails at once: no server is running there. Other POSTs
 * (a job submission) are never sent twice: their caller says what the failure means.
 */
import { createReadStream } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { CliError, type ApiProblem } from './errors.js';

export interface RetryOptions {
  /** Where the waits are said (the CLI: stderr). */
  say(line: string): void;
  /** Seconds of waiting before giving up (default 120; 0: no retry). */
  maxWaitSeconds?: number;
  /** For tests. */
  sleep?: (ms: number) => Promise<void>;
}

export interface ClientOptions {
  url: string;
  token: string | null;
  tokenSource?: string;
  dispatcher?: Dispatcher;
  /** Ride out database outages and server restarts (see the module comment); absent: no retry. */
  retry?: RetryOptions;
}

/** Seconds a read waits in all for the database to come back (`WMS_RETRY_SECONDS`). */
export const DEFAULT_RETRY_SECONDS = 120;
/** The first wait, and the longest one (seconds). */
const FIRST_WAIT_SECONDS = 1;
const LONGEST_WAIT_SECONDS = 15;

/**
 * The wait before retry number `step` (0 first), in whole seconds: doubling from 1 to 15, at
 * least the server's Retry-After (capped at 15), cut so that the waits stay within
 * `maxWaitSeconds`; null when no time is left (give up). Pure.
 */
export function nextWait(step: number, waitedSeconds: number, maxWaitSeconds: number, retryAfterSeconds = 0): number | null {
  const doubling = Math.min(LONGEST_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** Math.min(step, 10));
  const wait = Math.min(LONGEST_WAIT_SECONDS, Math.max(doubling, Math.ceil(retryAfterSeconds)));
  const left = Math.floor(maxWaitSeconds - waitedSeconds);
  if (left < 1) return null;
  return Math.min(wait, left);
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

function errCode(e: unknown): string | undefined {
  for (let x: unknown = e, i = 0; x && i < 4; i++) {
    const c = (x as { code?: unknown }).code;
    if (typeof c === 'string' && UNREACHABLE_CODES.has(c)) return c;
    const inner = (x as { errors?: unknown[] }).errors;
    if (Array.isArray(inner)) for (const y of inner) if (errCode(y)) return errCode(y);
    x = (x as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The methods a retry cannot apply twice in a harmful way. */
const IDEMPOTENT_METHODS = new Set<string>(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Per request: may it be sent again after an outage? */
export interface RequestOptions {
  /** A POST that is safe to repeat (a read such as explain); GET, HEAD, PUT and DELETE always are. */
  idempotent?: boolean;
}

/** What one attempt gave: an answer, or a reason to try again. */
type Attempt =
  | { kind: 'answer'; res: Dispatcher.ResponseData }
  | { kind: 'db-down'; res: Dispatcher.ResponseData; text: string; retryAfter: number }
  | { kind: 'unreachable'; code: string; error: unknown };

export class ApiClient {
  /** Set once the server answered anything: a refused connection after that is a restart. */
  private answered = false;

  constructor(private readonly options: ClientOptions) {}

  get url(): string {
    return this.options.url;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.options.token) h['authorization'] = `Bearer ${this.options.token}`;
    return h;
  }

  private unreachable(code: string): CliError {
    return new CliError(
      `cannot reach the server at ${this.options.url} (${code}); is "wms server start" running? (set WMS_URL)`,
      [],
      [],
      'UNREACHABLE',
    );
  }

  private async attempt(
    method: Dispatcher.HttpMethod,
    path: string,
    init: { body?: () => Dispatcher.DispatchOptions['body']; headers?: Record<string, string> },
  ): Promise<Attempt> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.options.url}${path}`, {
        method,
        headers: this.headers(init.headers),
        body: init.body?.() ?? null,
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
      });
    } catch (e) {
      const code = errCode(e);
      if (code) return { kind: 'unreachable', code, error: e };
      throw new CliError(`request to ${this.options.url}${path} failed: ${(e as Error).message}`);
    }
    this.answered = true;
    if (res.statusCode !== 503) return { kind: 'answer', res };
    // Read the body to see whether it is the database; anything else is an answer to report.
    const text = await res.body.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string }).code;
    } catch {
      // not JSON: a proxy's page
    }
    const retryAfter = Number(res.headers['retry-after']);
    if (code === 'WMS_DB_UNAVAILABLE') return { kind: 'db-down', res, text, retryAfter: Number.isFinite(retryAfter) ? retryAfter : 0 };
    return { kind: 'answer', res: { ...res, body: bodyOf(text, res.body) } };
  }

  /**
   * Sends a request; retries it through outages when it is safe to send twice (see the module
   * comment). Answers the response (its body unread), whatever its status.
   */
  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    init: { body?: () => Dispatcher.DispatchOptions['body']; headers?: Record<string, string> } = {},
    opts: RequestOptions = {},
  ): Promise<Dispatcher.ResponseData> {
    const retry = this.options.retry;
    const repeatable = IDEMPOTENT_METHODS.has(method) || opts.idempotent === true;
    const maxWait = retry?.maxWaitSeconds ?? DEFAULT_RETRY_SECONDS;
    const sleep = retry?.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let waited = 0;
    let step = 0;
    for (;;) {
      const wasAnswered = this.answered;
      const a = await this.attempt(method, path, init);
      if (a.kind === 'answer') return a.res;
      const mayRetry = retry !== undefined && repeatable && (a.kind === 'db-down' || wasAnswered);
      const wait = mayRetry ? nextWait(step, waited, maxWait, a.kind === 'db-down' ? a.retryAfter : 0) : null;
      if (wait === null) {
        if (a.kind === 'unreachable') {
          if (waited > 0) {
            throw new CliError(`the server at ${this.options.url} did not come back within ${waited} s (${a.code}); try again later`, [], [], 'UNREACHABLE');
          }
          throw this.unreachable(a.code);
        }
        if (waited > 0) {
          throw new CliError(
            `database unavailable: the server's database did not come back within ${waited} s of retries; try again later (WMS_RETRY_SECONDS waits longer)`,
            [],
            [],
            'WMS_DB_UNAVAILABLE',
          );
        }
        return { ...a.res, body: bodyOf(a.text, a.res.body) };
      }
      retry!.say(
        a.kind === 'db-down'
          ? `wms: database unavailable, retrying in ${wait} s`
          : `wms: server unreachable (${a.code}), retrying in ${wait} s`,
      );
      await sleep(wait * 1000);
      waited += wait;
      step++;
    }
  }

  private async fail(res: Dispatcher.ResponseData): Promise<never> {
    const text = await res.body.text();
    let body: { code?: string; message?: string; problems?: ApiProblem[] } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: a proxy's page, say
    }
    let message = body.message ?? `HTTP ${res.statusCode}`;
    if (body.code === 'WMS_AUTH_MISSING') {
      message += ' (set WMS_TOKEN, or put {"token": ...} in the config file; see wms --help)';
    } else if (body.code === 'WMS_AUTH_INVALID' && this.options.tokenSource) {
      message += ` (token from ${this.options.tokenSource})`;
    }
    throw new CliError(message, body.problems ?? [], [], body.code);
  }

  /** A JSON request; answers the parsed JSON body of a 2xx. */
  async json<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.send(
      method,
      path,
      text === undefined ? {} : { body: () => text, headers: { 'content-type': 'application/json' } },
      opts,
    );
    if (res.statusCode < 200 || res.statusCode >= 300) return this.fail(res);
    return (await res.body.json()) as T;
  }

  /** Uploads a file as a sandbox named `sha256`. */
  async uploadSandbox(sha256: string, file: string, size: number): Promise<{ sha256: string; size: number }> {
    // PUT of content named by its hash: safe to send again (a fresh stream each time).
    const res = await this.send('PUT', `/api/sandboxes/${sha256}`, {
      body: () => createReadStream(file),
      headers: { 'content-type': 'application/gzip', 'content-length': String(size) },
    });
    if (res.statusCode !== 201) return this.fail(res);
    return (await res.body.json()) as { sha256: string; size: number };
  }

  /** Downloads a sandbox; answers its body stream. */
  async downloadSandbox(sha256: string): Promise<Dispatcher.ResponseData['body']> {
    const res = await this.send('GET', `/api/sandboxes/${sha256}`);
    if (res.statusCode !== 200) return this.fail(res);
    return res.body;
  }
}

/** A response body already read to `text`, readable again (by `fail`). */
function bodyOf(text: string, _original: Dispatcher.ResponseData['body']): Dispatcher.ResponseData['body'] {
  return { text: async () => text, json: async () => JSON.parse(text) as unknown } as unknown as Dispatcher.ResponseData['body'];
}
