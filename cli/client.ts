/**
 * The CLI's HTTP client (undici). Every answer outside 2xx becomes a CliError carrying the
 * server's `{ code, message, problems }`; a server that does not answer becomes a
 * CliError with code `UNREACHABLE` (the token bootstrap falls back to the database on it).
 * The dispatcher is injectable for tests.
 */
import { createReadStream } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { CliError, type ApiProblem } from './errors.js';

export interface ClientOptions {
  url: string;
  token: string | null;
  tokenSource?: string;
  dispatcher?: Dispatcher;
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

export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  get url(): string {
    return this.options.url;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.options.token) h['authorization'] = `Bearer ${this.options.token}`;
    return h;
  }

  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    init: { body?: Dispatcher.DispatchOptions['body']; headers?: Record<string, string> } = {},
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(`${this.options.url}${path}`, {
        method,
        headers: this.headers(init.headers),
        body: init.body ?? null,
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
      });
    } catch (e) {
      const code = errCode(e);
      if (code) {
        throw new CliError(
          `cannot reach the server at ${this.options.url} (${code}); is "wms server start" running? (set WMS_URL)`,
          [],
          [],
          'UNREACHABLE',
        );
      }
      throw new CliError(`request to ${this.options.url}${path} failed: ${(e as Error).message}`);
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
  async json<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, {
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (res.statusCode < 200 || res.statusCode >= 300) return this.fail(res);
    return (await res.body.json()) as T;
  }

  /** Uploads a file as a sandbox named `sha256`. */
  async uploadSandbox(sha256: string, file: string, size: number): Promise<{ sha256: string; size: number }> {
    const res = await this.send('PUT', `/api/sandboxes/${sha256}`, {
      body: createReadStream(file),
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
