/**
 * The pilot's HTTP client: one base URL, one bearer token (the pilot's, or a job's), JSON in
 * and out, a few retries on what is worth retrying (the service restarting, a 503), and error
 * messages that say which call failed and why, in one line.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type {
  Heartbeat,
  HeartbeatAnswer,
  JobStatusAnswer,
  JobStatusReport,
  LogBatch,
  PilotConfig,
  PilotStatusReport,
  RegisterAnswer,
  RegisterRequest,
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

export class HttpClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

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

/** The routes a pilot calls with its own token. */
export class PilotApi {
  readonly http: HttpClient;

  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {
    this.http = new HttpClient(baseUrl, token);
  }

  config(): Promise<PilotConfig> {
    return this.http.call('GET', '/api/pilots/self/config');
  }

  /** The server clock, ms since the epoch (no retries: a retried sample would be skewed). */
  async serverTime(): Promise<number> {
    return (await this.http.call<{ now: number }>('GET', '/api/time', undefined, { retries: false })).now;
  }

  register(body: RegisterRequest): Promise<RegisterAnswer> {
    return this.http.call('POST', '/api/pilots/self/register', body);
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

  /** The JobChannel of one matched job, speaking with its job token. */
  jobChannel(jobId: number, jobToken: string): JobChannel {
    const http = new HttpClient(this.baseUrl, jobToken);
    return {
      setStatus: (report: JobStatusReport) => http.call<JobStatusAnswer>('POST', `/api/jobs/${jobId}/status`, report),
      heartbeat: (hb: Heartbeat) => http.call<HeartbeatAnswer>('POST', `/api/jobs/${jobId}/heartbeat`, hb),
      downloadSandbox: (sha256: string, destFile: string) => http.download(`/api/sandboxes/${sha256}`, destFile),
      uploadSandbox: (file: string, sha256: string) => http.upload(`/api/sandboxes/${sha256}`, file, 'application/gzip'),
    };
  }
}
