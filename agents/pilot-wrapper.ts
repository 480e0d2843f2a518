/**
 * The pilot wrapper: the bash script the site director hands to a computing element for one
 * pilot. It is `pilot/wrapper.sh` (the body, which documents each step) behind a header of
 * readonly (not exported) parameters:
 *
 * ```
 * #!/bin/bash
 * readonly WMS_URL='https://wms.example.org'
 * readonly WMS_TOKEN='eyJ...'
 * ...
 * <body of pilot/wrapper.sh>
 * ```
 *
 * Every value is single-quoted, so no value is ever expanded or executed by the shell. The
 * queue's `environment` is not in the wrapper: it is for payloads only, and reaches them through
 * the pilot's settings (`PilotConfig.payloadEnvironment`), so that no queue setting changes how
 * bash or node start (`NODE_OPTIONS`, `BASH_ENV`, `LD_PRELOAD`, ...).
 * Rendering is pure; only `loadWrapperTemplate` reads a file.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

/** What one wrapper needs: where to call home, who it is, what to run and where. */
export interface WrapperParams {
  /** Server base URL (http or https); the bundle is `<serverUrl>/pilot/pilot.tar.gz`. */
  serverUrl: string;
  /** The pilot's token, sent as `Authorization: Bearer`. */
  token: string;
  stamp: string;
  /** SHA-256 (hex) of pilot.tar.gz; the wrapper refuses any other bytes. */
  bundleSha256: string;
  /** A node binary, or a directory holding `bin/node` or `node` (CVMFS); tried before PATH. */
  nodePath?: string | null;
  /** Work-dir candidates tried before $TMPDIR, $SLURM_TMPDIR, $_CONDOR_SCRATCH_DIR, /scratch, /tmp. */
  workDirs?: string[];
  /** Keep the work dir after the pilot ends (debugging). */
  keepWorkDir?: boolean;
}

/**
 * The wrapper's own exit codes (pilot/wrapper.sh); any other code is the pilot's, and 130 or
 * 143 mean SIGINT or SIGTERM before the pilot started.
 */
export const WRAPPER_EXIT = {
  noWorkDir: 10,
  noNode: 11,
  downloadFailed: 12,
  checksumMismatch: 13,
  unpackFailed: 14,
  misconfigured: 15,
} as const;

/** Path of the template inside the package. */
export const WRAPPER_TEMPLATE_PATH = join('pilot', 'wrapper.sh');

/** Header parameter names, set readonly by the header. */
type HeaderName = 'WMS_URL' | 'WMS_TOKEN' | 'WMS_STAMP' | 'WMS_BUNDLE_SHA256' | 'WMS_NODE_PATH' | 'WMS_WORK_DIRS' | 'WMS_KEEP_WORK_DIR';

let template: Promise<string> | undefined;

/** Reads `<package root>/pilot/wrapper.sh` once; later calls share the same answer. */
export function loadWrapperTemplate(): Promise<string> {
  if (template === undefined) {
    const loading = readFile(join(packageRoot(), WRAPPER_TEMPLATE_PATH), 'utf8');
    template = loading;
    // A failed read is not cached: the next call tries again.
    loading.catch(() => {
      if (template === loading) template = undefined;
    });
  }
  return template;
}

/** `value` as one single-quoted shell word: `it's` becomes `'it'\''s'`. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The wrapper script for one pilot: `#!/bin/bash`, the header, then `template` without its own
 * shebang line. Throws an Error naming the problem when a parameter cannot be written safely:
 * a NUL byte, a malformed SHA-256 or URL, a work dir that is empty or holds ':'.
 */
export function renderWrapper(template: string, p: WrapperParams): string {
  if (!/^https?:\/\/\S+$/.test(p.serverUrl))
    throw new Error(`wrapper: serverUrl must be an http(s) URL, got ${JSON.stringify(p.serverUrl)}`);
  if (p.token === '') throw new Error('wrapper: token is empty');
  if (!/^[0-9a-fA-F]{64}$/.test(p.bundleSha256))
    throw new Error(`wrapper: bundleSha256 is not a hex SHA-256: ${JSON.stringify(p.bundleSha256)}`);
  const workDirs = p.workDirs ?? [];
  for (const dir of workDirs) {
    if (dir === '' || dir.includes(':')) throw new Error(`wrapper: work dir ${JSON.stringify(dir)} is empty or contains ':'`);
  }

  const params: [name: HeaderName, value: string][] = [
    ['WMS_URL', p.serverUrl],
    ['WMS_TOKEN', p.token],
    ['WMS_STAMP', p.stamp],
    ['WMS_BUNDLE_SHA256', p.bundleSha256.toLowerCase()],
    ['WMS_NODE_PATH', p.nodePath ?? ''],
    ['WMS_WORK_DIRS', workDirs.join(':')],
    ['WMS_KEEP_WORK_DIR', p.keepWorkDir ? '1' : '0'],
  ];
  const lines = ['#!/bin/bash', '# pilot-wms pilot wrapper: parameters, then pilot/wrapper.sh'];
  for (const [name, value] of params) lines.push(`readonly ${name}=${shellQuote(checkValue(name, value))}`);
  return `${lines.join('\n')}\n\n${stripShebang(template)}`;
}

function checkValue(name: string, value: string): string {
  if (value.includes('\0')) throw new Error(`wrapper: the value of ${name} contains a NUL byte`);
  return value;
}

function stripShebang(text: string): string {
  return text.startsWith('#!') ? text.slice(text.indexOf('\n') + 1 || text.length) : text;
}
