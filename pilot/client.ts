/**
 * The pilot's HTTP client: one base URL, one bearer token (the pilot's, or a job's), JSON in
 * and out, a few retries on what is worth retrying (the service restarting, a 503), and error
 * messages that say which call failed and why, in one line.
 *
 * Tokens are short-lived and renewed. The pilot starts with the wrapper's token (long: it must
 * outlive a batch-queue wait); registration answers a short one, which `PilotApi` renews at
 * half-life (`POST /api/pilots/self/token`), falling back to the wrapper's token when the short
 * one expired meanwhile (the services were unreachable). A job channel switches to the renewed
 * job token a heartbeat or status answer carries. A job token refused because the job is over
 * (`jobTokenDeadMessage`) reads as the job's state: a heartbeat answer with that status, a
 * report not accepted; the job wrapper then stops as it did before. Tokens live in memory only.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  jobStateOfDeadToken,
  type Heartbeat,
  type HeartbeatAnswer,
  type JobStatusAnswer,
  type JobStatusReport,
  type LogBatch,
  type PilotConfig,
  type PilotStatusReport,
  type RegisterAnswer,
  type RegisterRequest,
  type RenewedToken,
} from '../core/pilot-protocol.js';
import type { JobChannel } from './job-wrapper.js';

/** A call that failed: `status` is the HTTP status (0 when the server could not be reached). */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const RETRY_DELAYS_MS = [250, 1000, 3000];

function retryable(e: unknown): boolean {
  return e instanceof HttpError ? e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504 : false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bearer token, or where to read the current one (it is renewed while the pilot runs). */
export type TokenSource = string | (() => string);

export class HttpClient {
  private readonly tokenOf: () => string;

  constructor(
    readonly baseUrl: string,
    token: TokenSource,
  ) {
    this.tokenOf = typeof token === 'string' ? () => token : token;
  }

  private get token(): string {
    return this.tokenOf();
  }

  /** One request; JSON body and answer. Retries connection failures and 502/503/504. */
  async call<T>(method: string, path: string, body?: unknown, opts: { retries?: boolean } = {}): Promise<T> {
    const delays = opts.retries === false ? [] : RETRY_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, body);
      } catch (e) {
        if (attempt >= delays.length || !retryable(e)) throw e;
        await sleep(delays[attempt]!);
      }
    }
  }

  private async once<T>(method: string, path: string, body: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new HttpError(`${method} ${path}: cannot reach ${this.baseUrl} (${cause?.code ?? cause?.message ?? (e as Error).message})`, 0);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!res.ok) {
      let code: string | undefined;
      let message = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { code?: string; message?: string };
        code = parsed.code;
        message = parsed.message ?? message;
      } catch {
        // not JSON: keep the text
      }
      throw new HttpError(`${method} ${path}: ${res.status} ${message}`, res.status, code);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Streams a GET to a file. */
  async download(path: string, destFile: string): Promise<void> {
    const res = await fetch(this.baseUrl + path, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(600_000) }).catch(
      (e: unknown) => {
        throw new HttpError(`GET ${path}: cannot reach ${this.baseUrl} (${(e as Error).message})`, 0);
      },
    );
    if (!res.ok || !res.body) throw new HttpError(`GET ${path}: ${res.status} ${(await res.text()).slice(0, 300)}`, res.status);
    await pipeline(Readable.fromWeb(res.body as WebReadableStream), createWriteStream(destFile));
  }

  /** Streams a file as the body of a PUT. */
  async upload(path: string, file: string, contentType: string): Promise<void> {
    const { size } = await stat(file);
    const res = await fetch(this.baseUrl + path, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': contentType, 'content-length': String(size) },
      body: Readable.toWeb(createReadStream(file)) as unknown as RequestInit['body'],
      duplex: 'half',
      signal: AbortSignal.timeout(600_000),
    } as RequestInit).catch((e: unknown) => {
      throw new HttpError(`PUT ${path}: cannot reach ${this.baseUrl} (${(e as Error).message})`, 0);
    });
    if (!res.ok) throw new HttpError(`PUT ${path}: ${res.status} ${(await res.text()).slice(0, 300)}`, res.status);
  }
}

/** The answer of `POST /api/match`. */
export interface MatchAnswer {
  match: { jobId: number; jdl: string; owner: string; ownerGroup: string; vo: string; token: string } | null;
}

/** Renewal: at this fraction of the time left; never sooner than this many ms apart. */
const RENEW_AT = 0.5;
const RENEW_MIN_MS = 1000;
/** After a failed renewal (the services away), the next try. */
const RENEW_RETRY_MS = 30_000;

/** The routes a pilot calls with its own token. */
export class PilotApi {
  readonly http: HttpClient;
  private current: string;
  private renewal: NodeJS.Timeout | null = null;
  private stopped = false;

  /**
   * `token`: the wrapper's. `onLog` hears about renewals that failed (the pilot's remote log).
   */
  constructor(
    readonly baseUrl: string,
    private readonly wrapperToken: string,
    private readonly onLog: (line: string) => void = () => undefined,
  ) {
    this.current = wrapperToken;
    this.http = new HttpClient(baseUrl, () => this.current);
  }

  /** The token the pilot uses now (the push channel reconnects with it). */
  get token(): string {
    return this.current;
  }

  /** Uses `renewed` from now on and renews it again at half of its remaining life. */
  adopt(renewed: RenewedToken): void {
    this.current = renewed.token;
    this.schedule(Date.parse(renewed.tokenExpiresAt));
  }

  private schedule(expiresAtMs: number): void {
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = null;
    if (this.stopped || !Number.isFinite(expiresAtMs)) return;
    const delay = Math.max(RENEW_MIN_MS, (expiresAtMs - Date.now()) * RENEW_AT);
    this.later(delay);
  }

  private later(ms: number): void {
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = setTimeout(() => void this.renew(), Math.min(ms, 2 ** 31 - 1));
    this.renewal.unref();
  }

  /** Asks for a new short token now (with the current one, else the wrapper's). */
  async renew(): Promise<void> {
    if (this.stopped) return;
    const ask = (token: string) => new HttpClient(this.baseUrl, token).call<RenewedToken>('POST', '/api/pilots/self/token');
    try {
      let answer: RenewedToken;
      try {
        answer = await ask(this.current);
      } catch (e) {
        // The short token expired while the services were away: the wrapper's still vouches.
        if (!(e instanceof HttpError && e.status === 401) || this.current === this.wrapperToken) throw e;
        answer = await ask(this.wrapperToken);
      }
      this.adopt(answer);
    } catch (e) {
      if (e instanceof HttpError && e.status === 403) {
        this.onLog(`token renewal refused, no more renewals: ${e.message}`);
        this.stopped = true;
        return;
      }
      this.onLog(`token renewal failed (trying again in ${RENEW_RETRY_MS / 1000} s): ${(e as Error).message}`);
      if (!this.stopped) this.later(RENEW_RETRY_MS);
    }
  }

  /** Stops renewing (the pilot ends). */
  close(): void {
    this.stopped = true;
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = null;
  }

  config(): Promise<PilotConfig> {
    return this.http.call('GET', '/api/pilots/self/config');
  }

  /** The server clock, ms since the epoch (no retries: a retried sample would be skewed). */
  async serverTime(): Promise<number> {
    return (await this.http.call<{ now: number }>('GET', '/api/time', undefined, { retries: false })).now;
  }

  /** Registers; a Running answer carries the short-lived token used from then on. */
  async register(body: RegisterRequest): Promise<RegisterAnswer> {
    const answer = await this.http.call<RegisterAnswer>('POST', '/api/pilots/self/register', body);
    if (answer.token !== undefined && answer.tokenExpiresAt !== undefined) {
      this.adopt({ token: answer.token, tokenExpiresAt: answer.tokenExpiresAt });
    }
    return answer;
  }

  status(body: PilotStatusReport): Promise<unknown> {
    return this.http.call('POST', '/api/pilots/self/status', body);
  }

  logs(body: LogBatch): Promise<unknown> {
    return this.http.call('POST', '/api/pilots/self/logs', body);
  }

  match(resource: Record<string, unknown>): Promise<MatchAnswer> {
    return this.http.call('POST', '/api/match', resource);
  }

  /**
   * The JobChannel of one matched job, speaking with its job token, and with the renewed one
   * as soon as an answer carries it.
   */
  jobChannel(jobId: number, jobToken: string): JobChannel {
    let token = jobToken;
    const http = new HttpClient(this.baseUrl, () => token);
    const adopt = (a: { token?: string }) => {
      if (a.token !== undefined) token = a.token;
    };
    /** The job's state when the services refused the token because the job is over. */
    const deadState = (e: unknown) => (e instanceof HttpError && e.status === 403 ? jobStateOfDeadToken(e.message) : null);
    return {
      setStatus: async (report: JobStatusReport) => {
        try {
          const a = await http.call<JobStatusAnswer>('POST', `/api/jobs/${jobId}/status`, report);
          adopt(a);
          return { accepted: a.accepted, status: a.status };
        } catch (e) {
          const status = deadState(e);
          if (status !== null) return { accepted: false, status };
          throw e;
        }
      },
      heartbeat: async (hb: Heartbeat) => {
        try {
          const a = await http.call<HeartbeatAnswer>('POST', `/api/jobs/${jobId}/heartbeat`, hb);
          adopt(a);
          return { status: a.status, commands: a.commands };
        } catch (e) {
          const status = deadState(e);
          if (status !== null) return { status, commands: [] };
          throw e;
        }
      },
      downloadSandbox: (sha256: string, destFile: string) => http.download(`/api/sandboxes/${sha256}`, destFile),
      uploadSandbox: (file: string, sha256: string) => http.upload(`/api/sandboxes/${sha256}`, file, 'application/gzip'),
    };
  }
}
