/**
 * A small HTTP client for the WMS API, shared by the CLI (`cli/client.ts`) and the pilot
 * (`pilot/client.ts`): one base URL, a bearer token (or where to read the current one: the
 * pilot renews its own), JSON in and out, files streamed up and down. Everything but a 2xx
 * becomes an `ApiError` (`io/api-error.ts`): the server's `{ code, message, problems }` with
 * its status and `Retry-After`, or status 0 when no answer came (code `UNREACHABLE` for a
 * connection failure or the timeout).
 *
 * One try per call unless the call brings a `RetryLoop` (`io/retry.ts`): the caller's policy
 * decides which failures to send again and how long to wait, and `answered` tells it whether
 * this server ever answered (a refused connection after that is a restart, not a wrong URL).
 * A file body is opened afresh for each try. Built on undici's `request`; the dispatcher is
 * injectable (tests play the server with undici's MockAgent).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request, type Dispatcher } from 'undici';
import { errorOfAnswer, noAnswer } from './api-error.js';
import { retrying, type RetryLoop } from './retry.js';

/** A bearer token, none, or where to read the current one. */
export type TokenSource = string | null | (() => string | null);

export interface JsonClientOptions {
  baseUrl: string;
  token: TokenSource;
  dispatcher?: Dispatcher | undefined;
  /** How long a call may take in all (answer and body) before it counts as unanswered; default: no limit. */
  timeoutMs?: number | undefined;
}

export interface CallOptions {
  /** A JSON body. */
  json?: unknown;
  /** A file streamed as the body (opened again for each try). */
  file?: { path: string; size: number; contentType: string };
  /** This call's limit, instead of the client's. */
  timeoutMs?: number | undefined;
  /** Stops the call (and its retries) at once. */
  signal?: AbortSignal | undefined;
  /** Try again after a failure as this policy says; absent: one try. */
  retry?: RetryLoop | undefined;
}

export class JsonClient {
  private everAnswered = false;
  private readonly tokenOf: () => string | null;

  constructor(private readonly options: JsonClientOptions) {
    const t = options.token;
    this.tokenOf = typeof t === 'function' ? t : () => t;
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  /** Whether the server answered any call of this client (whatever the status). */
  get answered(): boolean {
    return this.everAnswered;
  }

  /** A call with a JSON answer: the parsed body of a 2xx (undefined when empty, a 204). */
  async json<T>(method: Dispatcher.HttpMethod, path: string, o: CallOptions = {}): Promise<T> {
    const res = await this.send(method, path, o);
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw noAnswer(`${method} ${path}`, this.options.baseUrl, e);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** A call whose 2xx body the caller reads (and must consume). */
  async stream(method: Dispatcher.HttpMethod, path: string, o: CallOptions = {}): Promise<Readable> {
    return (await this.send(method, path, o)).body;
  }

  /** A GET streamed into `destFile`. */
  async download(path: string, destFile: string, o: CallOptions = {}): Promise<void> {
    await pipeline(await this.stream('GET', path, o), createWriteStream(destFile));
  }

  /**
   * Sends the call, with retries when `o.retry` says so; answers the response of a 2xx, its
   * body unread. Throws an ApiError for any other outcome.
   */
  send(method: Dispatcher.HttpMethod, path: string, o: CallOptions = {}): Promise<Dispatcher.ResponseData> {
    if (!o.retry) return this.once(method, path, o);
    return retrying(() => this.once(method, path, o), { ...o.retry, signal: o.retry.signal ?? o.signal });
  }

  private headers(o: CallOptions): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
    const token = this.tokenOf();
    if (token) h['authorization'] = `Bearer ${token}`;
    if (o.json !== undefined) h['content-type'] = 'application/json';
    if (o.file) {
      h['content-type'] = o.file.contentType;
      h['content-length'] = String(o.file.size);
    }
    return h;
  }

  private signal(o: CallOptions): AbortSignal | undefined {
    const ms = o.timeoutMs ?? this.options.timeoutMs;
    const signals = [o.signal, ms === undefined ? undefined : AbortSignal.timeout(ms)].filter((s) => s !== undefined);
    return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  }

  private async once(method: Dispatcher.HttpMethod, path: string, o: CallOptions): Promise<Dispatcher.ResponseData> {
    const call = `${method} ${path}`;
    const signal = this.signal(o);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.options.baseUrl + path, {
        method,
        headers: this.headers(o),
        body: o.file ? createReadStream(o.file.path) : o.json !== undefined ? JSON.stringify(o.json) : null,
        ...(signal ? { signal } : {}),
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
      });
    } catch (e) {
      throw noAnswer(call, this.options.baseUrl, e);
    }
    this.everAnswered = true;
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw noAnswer(call, this.options.baseUrl, e);
    }
    throw errorOfAnswer(call, res.statusCode, text, res.headers['retry-after']);
  }
}
