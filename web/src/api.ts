/**
 * The dashboard's only way to the services: `fetch` with `Authorization: Bearer <token>`.
 * The token lives in sessionStorage (gone when the tab closes); a 401 signs the user out.
 * The pages type the answers with api/'s shapes, imported with `import type` only, so that
 * TypeBox stays out of the bundle.
 */
import type { JdlProblem } from '../../core/errors.js';

const TOKEN_KEY = 'wms.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
  window.dispatchEvent(new Event('wms-auth'));
}

/**
 * The database behind the services: `false` while answers are 503 WMS_DB_UNAVAILABLE (the
 * services run, their database does not answer). Set by every answer `api` gets; the banner
 * (main.tsx) shows it and polls `/api/health` until it is back. Listeners: the `wms-db` event.
 */
let databaseUp = true;

export function isDatabaseUp(): boolean {
  return databaseUp;
}

/** Records what the last answer said of the database; `wms-db` tells the page when it changes. */
export function setDatabaseUp(up: boolean): void {
  if (up === databaseUp) return;
  databaseUp = up;
  window.dispatchEvent(new Event('wms-db'));
}

/** True for an answer that says the database is away (503 with code WMS_DB_UNAVAILABLE). */
export function isDbUnavailable(status: number, code: string | undefined): boolean {
  return status === 503 && code === 'WMS_DB_UNAVAILABLE';
}

/** An error answer of the API: `{ code, message, problems? }` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problems: JdlProblem[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export async function api<T>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined; // not JSON: a proxy's error page; the status says enough
  }
  if (!res.ok) {
    const e = (data ?? {}) as { code?: string; message?: string; problems?: JdlProblem[] };
    if (isDbUnavailable(res.status, e.code)) setDatabaseUp(false);
    if (res.status === 401 && token === getToken()) setToken(null);
    throw new ApiError(res.status, e.code ?? 'WMS_HTTP', e.message ?? `${res.status} ${res.statusText}`, e.problems ?? []);
  }
  setDatabaseUp(true);
  return data as T;
}

/**
 * Fetches `path` with the token as a file (a sandbox archive) and has the browser save it as
 * `fileName`, through an object URL on an `<a download>`. An error answer throws as `api` does.
 */
export async function downloadFile(path: string, fileName: string, token = getToken()): Promise<void> {
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) {
    const text = await res.text();
    let e: { code?: string; message?: string } = {};
    try {
      e = text ? (JSON.parse(text) as typeof e) : {};
    } catch {
      // not JSON: the status says enough
    }
    if (isDbUnavailable(res.status, e.code)) setDatabaseUp(false);
    if (res.status === 401 && token === getToken()) setToken(null);
    throw new ApiError(res.status, e.code ?? 'WMS_HTTP', e.message ?? `${res.status} ${res.statusText}`);
  }
  saveBlob(await res.blob(), fileName);
}

/** Has the browser save `blob` as the file `fileName` (an object URL on an `<a download>`). */
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.append(a);
  try {
    a.click();
  } finally {
    a.remove();
    // Revoked a moment later, not at once: some browsers still read the blob after the click.
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}
