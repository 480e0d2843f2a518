/**
 * Files of the user's computer as one input sandbox, built in the browser: a ustar archive of
 * the files under their names (as `wms job submit` packs them: base names, regular files, mode
 * 0644), gzipped with the browser's CompressionStream, named by its SHA-256 and uploaded with
 * `PUT /api/sandboxes/:sha256`. The services check the archive as they check the CLI's.
 */
import { ApiError, getToken } from './api.js';

const BLOCK = 512;
/** The largest size a ustar header holds: 11 octal digits. */
const MAX_ENTRY_BYTES = 0o77777777777;

/** `value` in octal, zero-padded to `width - 1` digits and NUL-terminated (a ustar number field). */
function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** The 512-byte ustar header of a regular file. Throws for a name or size ustar cannot hold. */
function header(name: string, size: number, mtimeSeconds: number): Uint8Array {
  const encoder = new TextEncoder();
  const nameBytes = encoder.encode(name);
  if (nameBytes.length === 0 || nameBytes.length > 100) throw new Error(`${name}: a file name must be 1 to 100 bytes long`);
  if (size > MAX_ENTRY_BYTES) throw new Error(`${name}: larger than a tar entry can be`);
  const h = new Uint8Array(BLOCK);
  const put = (text: string, at: number) => h.set(encoder.encode(text), at);
  h.set(nameBytes, 0);
  put(octal(0o644, 8), 100); // mode
  put(octal(0, 8), 108); // uid
  put(octal(0, 8), 116); // gid
  put(octal(size, 12), 124);
  put(octal(mtimeSeconds, 12), 136);
  put(' '.repeat(8), 148); // the checksum counts its own field as blanks
  put('0', 156); // a regular file
  put('ustar\u000000', 257); // magic and version
  const sum = h.reduce((a, b) => a + b, 0);
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** A ustar archive of `files`, each under its own name, ended by two zero blocks. */
async function tarOf(files: readonly File[]): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array[] = [];
  for (const file of files) {
    const data = new Uint8Array(await file.arrayBuffer());
    parts.push(header(file.name, data.length, Math.max(0, Math.floor(file.lastModified / 1000))), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(2 * BLOCK));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  if (!crypto.subtle) throw new Error('attaching files needs the dashboard over HTTPS (or on localhost): the browser hashes them');
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Packs `files` into one tar.gz and uploads it as the signed-in user; answers its reference,
 * `SB:<sha256>`. A refused upload throws ApiError with the services' message.
 */
export async function uploadFiles(files: readonly File[]): Promise<string> {
  const archive = await gzip(await tarOf(files));
  const sha = await sha256Hex(archive);
  const token = getToken();
  const res = await fetch(`/api/sandboxes/${sha}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: archive,
  });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    throw new ApiError(res.status, e.code ?? 'WMS_HTTP', e.message ?? `upload failed: ${res.status} ${res.statusText}`);
  }
  return `SB:${sha}`;
}
