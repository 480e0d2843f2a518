/**
 * The CLI's HTTP client, on the shared JSON client (`io/json-client.ts`). Every answer outside
 * 2xx becomes a CliError carrying the server's `{ code, message, problems }` and its status; a
 * server that does not answer becomes a CliError with code `UNREACHABLE` (the token bootstrap
 * falls back to the database on it). The dispatcher is injectable for tests.
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
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ApiError, UNREACHABLE } from '../io/api-error.js';
import { JsonClient, type CallOptions } from '../io/json-client.js';
import type { RetryLoop } from '../io/retry.js';
import { CliError } from './errors.js';

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

/** The methods a retry cannot apply twice in a harmful way. */
const IDEMPOTENT_METHODS = new Set<string>(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Per request: may it be sent again after an outage? */
export interface RequestOptions {
  /** A POST that is safe to repeat (a read such as explain); GET, HEAD, PUT and DELETE always are. */
  idempotent?: boolean;
}

/** The server's database is away (it said so): worth waiting for. */
function isDbDown(e: unknown): boolean {
  return e instanceof ApiError && e.status === 503 && e.code === 'WMS_DB_UNAVAILABLE';
}

function isUnreachable(e: unknown): boolean {
  return e instanceof ApiError && e.status === 0 && e.code === UNREACHABLE;
}

export class ApiClient {
  private readonly http: JsonClient;

  constructor(private readonly options: ClientOptions) {
    this.http = new JsonClient({ baseUrl: options.url, token: options.token, dispatcher: options.dispatcher });
  }

  get url(): string {
    return this.options.url;
  }

  /**
   * The retry policy of one request (see the module comment), and how long it waited so far,
   * to word the failure. None without `retry` in the options or for a request not safe twice.
   */
  private retryLoop(method: string, opts: RequestOptions): { loop?: RetryLoop; waited: () => number } {
    const retry = this.options.retry;
    let waited = 0;
    if (!retry || !(IDEMPOTENT_METHODS.has(method) || opts.idempotent === true)) return { waited: () => waited };
    const maxWait = retry.maxWaitSeconds ?? DEFAULT_RETRY_SECONDS;
    const loop: RetryLoop = {
      wait: (e, step) => {
        // A refused connection is a restart only when this server answered before.
        if (!isDbDown(e) && !(isUnreachable(e) && this.http.answered)) return null;
        const s = nextWait(step, waited, maxWait, isDbDown(e) ? ((e as ApiError).retryAfterSeconds ?? 0) : 0);
        return s === null ? null : s * 1000;
      },
      onRetry: (e, _step, ms) => {
        const s = ms / 1000;
        waited += s;
        retry.say(
          isDbDown(e)
            ? `wms: database unavailable, retrying in ${s} s`
            : `wms: server unreachable (${(e as ApiError).reason}), retrying in ${s} s`,
        );
      },
      ...(retry.sleep ? { sleep: retry.sleep } : {}),
    };
    return { loop, waited: () => waited };
  }

  /** The failure of a request as the CLI words it. */
  private cliError(e: ApiError, path: string, waited: number): CliError {
    if (isUnreachable(e)) {
      const message =
        waited > 0
          ? `the server at ${this.options.url} did not come back within ${waited} s (${e.reason}); try again later`
          : `cannot reach the server at ${this.options.url} (${e.reason}); is "wms server start" running? (set WMS_URL)`;
      return new CliError(message, [], [], UNREACHABLE);
    }
    if (e.status === 0) return new CliError(`request to ${this.options.url}${path} failed: ${e.reason}`);
    if (isDbDown(e) && waited > 0) {
      return new CliError(
        `database unavailable: the server's database did not come back within ${waited} s of retries; try again later (WMS_RETRY_SECONDS waits longer)`,
        [],
        [],
        e.code,
        e.status,
      );
    }
    let message = e.reason;
    if (e.code === 'WMS_AUTH_MISSING') {
      message += ' (set WMS_TOKEN, or put {"token": ...} in the config file; see wms --help)';
    } else if (e.code === 'WMS_AUTH_INVALID' && this.options.tokenSource) {
      message += ` (token from ${this.options.tokenSource})`;
    }
    return new CliError(message, e.problems, [], e.code, e.status);
  }

  /** Runs `call` with the retry policy of `method`, its failure worded as a CliError. */
  private async run<T>(method: string, path: string, opts: RequestOptions, call: (o: CallOptions) => Promise<T>): Promise<T> {
    const { loop, waited } = this.retryLoop(method, opts);
    try {
      return await call(loop ? { retry: loop } : {});
    } catch (e) {
      throw e instanceof ApiError ? this.cliError(e, path, waited()) : e;
    }
  }

  /** A JSON request; answers the parsed JSON body of a 2xx. */
  json<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.run(method, path, opts, (o) => this.http.json<T>(method, path, body === undefined ? o : { ...o, json: body }));
  }

  /** A file as the body (e.g. a YAML template, `application/yaml`); answers the parsed JSON body of a 2xx. */
  sendFile<T>(method: Dispatcher.HttpMethod, path: string, file: { path: string; size: number; contentType: string }): Promise<T> {
    return this.run(method, path, {}, (o) => this.http.json<T>(method, path, { ...o, file }));
  }

  /** Uploads a file as a sandbox named `sha256` (a PUT of content named by its hash: safe to send again). */
  uploadSandbox(sha256: string, file: string, size: number): Promise<{ sha256: string; size: number }> {
    const path = `/api/sandboxes/${sha256}`;
    return this.run('PUT', path, {}, (o) =>
      this.http.json<{ sha256: string; size: number }>('PUT', path, { ...o, file: { path: file, size, contentType: 'application/gzip' } }),
    );
  }

  /** Downloads a sandbox; answers its body stream. */
  downloadSandbox(sha256: string): Promise<Readable> {
    const path = `/api/sandboxes/${sha256}`;
    return this.run('GET', path, {}, (o) => this.http.stream('GET', path, o));
  }
}
