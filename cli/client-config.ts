/**
 * Where the CLI finds the server and its token, first found wins:
 *
 * - URL: `WMS_URL`, else `url` in the config file, else http://127.0.0.1:8080.
 * - token: `WMS_TOKEN`, else `token` in the config file, else `<WMS_DATA_DIR|./var>/admin.token`
 *   when it is readable (the laptop case: the server and the CLI share a data directory).
 *
 * The config file is `$XDG_CONFIG_HOME/pilot-wms/config.json` (default
 * `~/.config/pilot-wms/config.json`) holding `{ "url": "...", "token": "..." }`.
 * Pure apart from the `readText` it is given.
 */
import { join, resolve } from 'node:path';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface ClientConfig {
  url: string;
  token: string | null;
  /** Where the token came from, for error messages ("WMS_TOKEN", a file path, or "none"). */
  tokenSource: string;
  configFile: string;
}

export type ReadText = (path: string) => string | null;

export function configFilePath(env: Readonly<Record<string, string | undefined>>, home: string): string {
  const base = env['XDG_CONFIG_HOME'] || join(home, '.config');
  return join(base, 'pilot-wms', 'config.json');
}

export class ClientConfigError extends Error {}

export function resolveClientConfig(
  env: Readonly<Record<string, string | undefined>>,
  home: string,
  cwd: string,
  readText: ReadText,
): ClientConfig {
  const configFile = configFilePath(env, home);
  let file: { url?: unknown; token?: unknown } = {};
  const raw = readText(configFile);
  if (raw !== null) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      file = parsed as typeof file;
    } catch (e) {
      throw new ClientConfigError(`${configFile}: not a JSON object with url and token (${(e as Error).message})`);
    }
  }
  const fileUrl = typeof file.url === 'string' && file.url !== '' ? file.url : undefined;
  const fileToken = typeof file.token === 'string' && file.token !== '' ? file.token : undefined;
  const url = (env['WMS_URL'] || fileUrl || DEFAULT_URL).replace(/\/+$/, '');
  try {
    new URL(url);
  } catch {
    throw new ClientConfigError(`"${url}" is not a URL (WMS_URL or "url" in ${configFile})`);
  }

  if (env['WMS_TOKEN']) return { url, token: env['WMS_TOKEN'].trim(), tokenSource: 'WMS_TOKEN', configFile };
  if (fileToken) return { url, token: fileToken.trim(), tokenSource: configFile, configFile };
  const adminToken = resolve(cwd, env['WMS_DATA_DIR'] || './var', 'admin.token');
  const fromDisk = readText(adminToken)?.trim();
  if (fromDisk) return { url, token: fromDisk, tokenSource: adminToken, configFile };
  return { url, token: null, tokenSource: 'none', configFile };
}

/**
 * When a token expires, read from its own `exp` claim (a JWT's middle part), or null when it is
 * not a JWT or has none. Not verified: for showing the caller their own token's lifetime only.
 */
export function tokenExpiresAt(token: string | null): Date | null {
  const payload = token?.split('.')[1];
  if (payload === undefined) return null;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? new Date(exp * 1000) : null;
  } catch {
    return null;
  }
}
