/** A small HTTP client for the load process, on undici with enough sockets for the run. */
import { Pool } from 'undici';

export class Api {
  readonly pool: Pool;
  constructor(
    readonly url: string,
    connections: number,
  ) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  async call<T>(method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await this.pool.request({
      method,
      path,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    // A proxy's error page is not JSON: kept as text, so that `ok` names it.
    const json = (res.headers['content-type'] ?? '').toString().includes('json');
    return { status: res.statusCode, body: (text && json ? JSON.parse(text) : text || undefined) as T };
  }

  /** Like call, but a status other than `expect` is an error naming the answer. */
  async ok<T>(method: 'GET' | 'POST', path: string, token: string, body: unknown, expect = 200): Promise<T> {
    const r = await this.call<T>(method, path, token, body);
    if (r.status !== expect) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export async function issueToken(api: Api, adminToken: string, body: Record<string, unknown>): Promise<string> {
  const r = await api.ok<{ token: string }>('POST', '/api/tokens', adminToken, body, 201);
  return r.token;
}
