/**
 * A small XML-RPC client over undici, written for OpenNebula's `oned` (its XML-RPC API)
 * but usable for any XML-RPC peer, and the XML parser it needs (no dependency).
 *
 * Three layers:
 * - `parseXml`: a strict, safe XML parser (elements, attributes, text, the five named entities,
 *   numeric character references, CDATA, comments, processing instructions). It refuses DOCTYPE
 *   declarations (so no entity expansion of any kind) and documents nested deeper than 256.
 * - `encodeMethodCall` / `decodeMethodResponse`: XML-RPC values. Numbers are encoded as `<int>` when
 *   they are 32-bit integers, else `<double>`; wrap with `i8()` or `double()` to choose; bigint is `<i8>`.
 *   Decoding accepts `int`, `i4`, `i8`, `ex:i8`, `boolean`, `string`, bare text, `double`, `nil`,
 *   `dateTime.iso8601` (kept as its text), `base64` (kept as its text), `array`, `struct`.
 *   An `i8` beyond 2^53 decodes to a bigint, otherwise every integer is a number.
 * - `XmlRpcClient.call` (raw value; a `<fault>` throws) and `XmlRpcClient.callOne` (OpenNebula's reply
 *   array, below; a failure throws).
 *
 * OpenNebula's reply array: a success has 3 values, a failure 5; parse by position:
 *   [0] boolean: true = success, false = failure
 *   [1] success: the result (an int id, a string holding an XML document, or a boolean);
 *       failure: the error message (string)
 *   [2] int error code: 0 on success, else one of ONE_ERROR_CODES (1.3)
 *   [3] failure only: int id of the object that caused the error
 *   [4] failure only: i8 replication index of oned's Raft log (HA internal; not an error detail)
 *
 * Every error is an `XmlRpcError` whose message names the method and the endpoint, e.g.
 * "one.vm.allocate at https://one.example.org:2633/RPC2: [AUTHENTICATION] User couldn't be authenticated",
 * and whose `kind` says where it came from; match on `kind` and `oneCode`, not on the text.
 */
import { request, type Dispatcher } from 'undici';

// ---------------------------------------------------------------------------------------------
// XML

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

const MAX_DEPTH = 256;
const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, at: () => string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&\s]{0,32});?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new Error(`XML: bare '&' ${at()}`);
    if (name.startsWith('#')) {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!Number.isInteger(code) || code < 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        throw new Error(`XML: bad character reference &${name}; ${at()}`);
      }
      return String.fromCodePoint(code);
    }
    const v = NAMED_ENTITIES[name];
    if (v === undefined) throw new Error(`XML: unknown entity &${name}; ${at()}`);
    return v;
  });
}

/**
 * Parses one XML document into its root element. Whitespace-only text between elements is kept
 * as text nodes; `text()` and `child()` below ignore it. Throws on anything malformed.
 */
export function parseXml(xml: string): XmlElement {
  let i = 0;
  const at = () => `at offset ${i}`;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;

  const expect = (s: string) => {
    if (!xml.startsWith(s, i)) throw new Error(`XML: expected '${s}' ${at()}`);
    i += s.length;
  };
  const skipTo = (end: string, what: string) => {
    const j = xml.indexOf(end, i);
    if (j < 0) throw new Error(`XML: unterminated ${what} ${at()}`);
    const body = xml.slice(i, j);
    i = j + end.length;
    return body;
  };
  const addText = (t: string) => {
    const top = stack[stack.length - 1];
    if (!top) {
      if (t.trim() !== '') throw new Error(`XML: text outside the root element ${at()}`);
      return;
    }
    const last = top.children[top.children.length - 1];
    if (typeof last === 'string') top.children[top.children.length - 1] = last + t;
    else top.children.push(t);
  };

  if (xml.charCodeAt(0) === 0xfeff) i = 1;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      addText(decodeEntities(xml.slice(i), at));
      i = xml.length;
      break;
    }
    if (lt > i) addText(decodeEntities(xml.slice(i, lt), at));
    i = lt;
    if (xml.startsWith('<!--', i)) {
      i += 4;
      skipTo('-->', 'comment');
    } else if (xml.startsWith('<![CDATA[', i)) {
      i += 9;
      if (stack.length === 0) throw new Error(`XML: CDATA outside the root element ${at()}`);
      addText(skipTo(']]>', 'CDATA section'));
    } else if (xml.startsWith('<?', i)) {
      i += 2;
      skipTo('?>', 'processing instruction');
    } else if (xml.startsWith('<!', i)) {
      throw new Error(`XML: DOCTYPE and other declarations are refused ${at()}`);
    } else if (xml.startsWith('</', i)) {
      i += 2;
      const m = /^([A-Za-z_:][\w.:-]*)\s*>/.exec(xml.slice(i, i + 300));
      if (!m) throw new Error(`XML: bad end tag ${at()}`);
      const top = stack.pop();
      if (!top || top.name !== m[1]) throw new Error(`XML: </${m[1]}> does not close <${top?.name ?? ''}> ${at()}`);
      i += m[0].length;
    } else {
      i += 1;
      const m = /^([A-Za-z_:][\w.:-]*)/.exec(xml.slice(i, i + 300));
      if (!m) throw new Error(`XML: bad start tag ${at()}`);
      i += m[0].length;
      const el: XmlElement = { name: m[1]!, attributes: {}, children: [] };
      for (;;) {
        const ws = /^\s*/.exec(xml.slice(i, i + 1000))!;
        i += ws[0].length;
        if (xml.startsWith('/>', i) || xml.startsWith('>', i)) break;
        const a = /^([A-Za-z_:][\w.:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/.exec(xml.slice(i, i + 100_000));
        if (!a || ws[0].length === 0) throw new Error(`XML: bad attribute in <${el.name}> ${at()}`);
        el.attributes[a[1]!] = decodeEntities(a[3] ?? a[4] ?? '', at);
        i += a[0].length;
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new Error(`XML: a second root element <${el.name}> ${at()}`);
      else root = el;
      if (xml.startsWith('/>', i)) {
        i += 2;
      } else {
        expect('>');
        if (stack.length >= MAX_DEPTH) throw new Error(`XML: nested deeper than ${MAX_DEPTH} ${at()}`);
        stack.push(el);
      }
    }
  }
  if (stack.length > 0) throw new Error(`XML: <${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) throw new Error('XML: no root element');
  return root;
}

/** The element children of `el` (optionally only those named `name`). */
export function children(el: XmlElement, name?: string): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name));
}

/** The first child element named `name`, if any. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return children(el, name)[0];
}

/** The text of an element (its text and CDATA, not its children's). */
export function text(el: XmlElement | undefined): string {
  if (!el) return '';
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}

/** The text of the child at a slash-separated path (`"TEMPLATE/CONTEXT/NAME"`), or undefined. */
export function textAt(el: XmlElement, path: string): string | undefined {
  let cur: XmlElement | undefined = el;
  for (const part of path.split('/')) {
    cur = cur && child(cur, part);
    if (!cur) return undefined;
  }
  return text(cur);
}

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Escapes text for XML content only (quotes stay readable). */
function escapeText(s: string): string {
  return s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
}

// ---------------------------------------------------------------------------------------------
// XML-RPC values

/** A value with an explicit XML-RPC type, for numbers whose type the default would get wrong. */
export class XmlRpcTyped {
  constructor(
    readonly type: 'i8' | 'double',
    readonly value: number | bigint,
  ) {}
}
export const i8 = (v: number | bigint) => new XmlRpcTyped('i8', v);
export const double = (v: number) => new XmlRpcTyped('double', v);

export type XmlRpcValue = string | number | bigint | boolean | null | XmlRpcTyped | XmlRpcValue[] | { [member: string]: XmlRpcValue };

function encodeValue(v: XmlRpcValue): string {
  if (v === null) return '<value><nil/></value>';
  if (typeof v === 'string') return `<value><string>${escapeText(v)}</string></value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'bigint') return `<value><i8>${v}</i8></value>`;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return `<value><int>${v}</int></value>`;
    if (!Number.isFinite(v)) throw new Error(`XML-RPC cannot carry ${v}`);
    return `<value><double>${v}</double></value>`;
  }
  if (v instanceof XmlRpcTyped) {
    if (v.type === 'i8') {
      if (typeof v.value === 'number' && !Number.isSafeInteger(v.value)) throw new Error(`i8 needs an integer, not ${v.value}`);
      return `<value><i8>${v.value}</i8></value>`;
    }
    if (!Number.isFinite(Number(v.value))) throw new Error(`XML-RPC cannot carry ${v.value}`);
    return `<value><double>${Number(v.value)}</double></value>`;
  }
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeValue).join('')}</data></array></value>`;
  const members = Object.entries(v)
    .map(([k, m]) => `<member><name>${escapeText(k)}</name>${encodeValue(m)}</member>`)
    .join('');
  return `<value><struct>${members}</struct></value>`;
}

/** The body of an XML-RPC call. */
export function encodeMethodCall(method: string, params: readonly XmlRpcValue[]): string {
  if (!/^[A-Za-z0-9_.:/]+$/.test(method)) throw new Error(`XML-RPC: bad method name ${JSON.stringify(method)}`);
  const ps = params.map((p) => `<param>${encodeValue(p)}</param>`).join('');
  return `<?xml version="1.0"?>\n<methodCall><methodName>${method}</methodName><params>${ps}</params></methodCall>\n`;
}

function parseInteger(s: string, tag: string): number | bigint {
  const t = s.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new Error(`XML-RPC: <${tag}> holds ${JSON.stringify(t)}`);
  const n = Number(t);
  if ((tag === 'int' || tag === 'i4') && (n < -(2 ** 31) || n >= 2 ** 31)) throw new Error(`XML-RPC: <${tag}> ${t} is beyond 32 bits`);
  return Number.isSafeInteger(n) ? n : BigInt(t);
}

/** Decodes one `<value>` element. */
export function decodeValue(value: XmlElement): XmlRpcValue {
  if (value.name !== 'value') throw new Error(`XML-RPC: expected <value>, got <${value.name}>`);
  const typed = children(value);
  if (typed.length === 0) return text(value); // bare text is a string
  if (typed.length > 1) throw new Error('XML-RPC: <value> with more than one child element');
  const t = typed[0]!;
  switch (t.name) {
    case 'string':
      return text(t);
    case 'int':
    case 'i4':
    case 'i8':
    case 'ex:i8':
      return parseInteger(text(t), t.name);
    case 'boolean': {
      const b = text(t).trim();
      if (b === '1' || b === 'true') return true;
      if (b === '0' || b === 'false') return false;
      throw new Error(`XML-RPC: <boolean> holds ${JSON.stringify(b)}`);
    }
    case 'double': {
      const d = Number(text(t).trim());
      if (Number.isNaN(d)) throw new Error(`XML-RPC: <double> holds ${JSON.stringify(text(t))}`);
      return d;
    }
    case 'nil':
    case 'ex:nil':
      return null;
    case 'dateTime.iso8601':
    case 'base64':
      return text(t).trim();
    case 'array': {
      const data = child(t, 'data');
      if (!data) throw new Error('XML-RPC: <array> without <data>');
      return children(data).map(decodeValue);
    }
    case 'struct': {
      const out: Record<string, XmlRpcValue> = {};
      for (const m of children(t, 'member')) {
        const name = child(m, 'name');
        const v = child(m, 'value');
        if (!name || !v) throw new Error('XML-RPC: <member> without <name> or <value>');
        out[text(name)] = decodeValue(v);
      }
      return out;
    }
    default:
      throw new Error(`XML-RPC: unknown type <${t.name}>`);
  }
}

export type MethodResponse = { ok: true; value: XmlRpcValue } | { ok: false; faultCode: number; faultString: string };

/** Decodes a `methodResponse`: its one param, or its fault. */
export function decodeMethodResponse(xml: string): MethodResponse {
  const root = parseXml(xml);
  if (root.name !== 'methodResponse') throw new Error(`XML-RPC: expected <methodResponse>, got <${root.name}>`);
  const fault = child(root, 'fault');
  if (fault) {
    const v = child(fault, 'value');
    const s = v ? decodeValue(v) : null;
    const f = s && typeof s === 'object' && !Array.isArray(s) && !(s instanceof XmlRpcTyped) ? s : {};
    const code = f['faultCode'];
    return {
      ok: false,
      faultCode: typeof code === 'number' ? code : Number(code ?? NaN),
      faultString: typeof f['faultString'] === 'string' ? f['faultString'] : 'fault without faultString',
    };
  }
  const value = child(root, 'params') && child(child(root, 'params')!, 'param');
  const v = value && child(value, 'value');
  if (!v) throw new Error('XML-RPC: <methodResponse> without <params><param><value>');
  return { ok: true, value: decodeValue(v) };
}

// ---------------------------------------------------------------------------------------------
// OpenNebula's error codes

export const ONE_ERROR_CODES = {
  SUCCESS: 0x0000,
  AUTHENTICATION: 0x0100,
  AUTHORIZATION: 0x0200,
  NO_EXISTS: 0x0400,
  ACTION: 0x0800,
  XML_RPC_API: 0x1000,
  INTERNAL: 0x2000,
  ALLOCATE: 0x4000,
  LOCKED: 0x8000,
} as const;
export type OneErrorName = keyof typeof ONE_ERROR_CODES;

/** The name of an OpenNebula error code ("AUTHENTICATION"), or `CODE_<n>` for one not in the table. */
export function oneErrorName(code: number): string {
  for (const [name, c] of Object.entries(ONE_ERROR_CODES)) if (c === code) return name;
  return `CODE_${code}`;
}

// ---------------------------------------------------------------------------------------------
// The client

export type XmlRpcErrorKind =
  /** The peer cannot be reached, or the connection broke. */
  | 'transport'
  /** No complete reply in time. */
  | 'timeout'
  /** An HTTP status other than 200. */
  | 'http'
  /** The reply is not a well-formed XML-RPC response. */
  | 'protocol'
  /** An XML-RPC `<fault>` (for oned: a wrong parameter type or count, an unknown method). */
  | 'fault'
  /** OpenNebula's failure array. */
  | 'one';

export class XmlRpcError extends Error {
  override readonly name = 'XmlRpcError';
  constructor(
    message: string,
    readonly kind: XmlRpcErrorKind,
    readonly method: string,
    readonly endpoint: string,
    readonly details: {
      httpStatus?: number;
      faultCode?: number;
      /** OpenNebula's error code (index 2) and its name. */
      oneCode?: number;
      oneCodeName?: string;
      /** OpenNebula's failure index 3: the object that caused the error. */
      objectId?: number;
    } = {},
  ) {
    super(message);
  }

  /** Worth trying again later: transport trouble, timeouts, 5xx, and OpenNebula's ACTION/LOCKED/INTERNAL. */
  get retryable(): boolean {
    if (this.kind === 'transport' || this.kind === 'timeout') return true;
    if (this.kind === 'http') return (this.details.httpStatus ?? 0) >= 500;
    if (this.kind === 'one') {
      const c = this.details.oneCode;
      return c === ONE_ERROR_CODES.ACTION || c === ONE_ERROR_CODES.LOCKED || c === ONE_ERROR_CODES.INTERNAL;
    }
    return false;
  }
}

export interface XmlRpcClientOptions {
  /** The full URL, e.g. `https://one.example.org:2633/RPC2`. */
  endpoint: string;
  /** undici dispatcher (tests pass a MockAgent); the global one otherwise. */
  dispatcher?: Dispatcher;
  /** Whole-call deadline in ms (default 30 s). */
  timeoutMs?: number;
  /** Largest reply accepted, bytes (default 64 MiB: a pool listing of thousands of VMs). */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;

function describeCause(e: unknown): string {
  let cur: unknown = e;
  const parts: string[] = [];
  for (let depth = 0; cur && depth < 4; depth++) {
    const err = cur as { code?: unknown; message?: unknown; cause?: unknown };
    const code = typeof err.code === 'string' ? err.code : '';
    const msg = typeof err.message === 'string' ? err.message : String(cur);
    const part = code && !msg.includes(code) ? `${code} ${msg}` : msg;
    if (part && !parts.includes(part)) parts.push(part);
    cur = err.cause;
  }
  return parts.join(': ') || 'unknown error';
}

export class XmlRpcClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(private readonly o: XmlRpcClientOptions) {
    const u = new URL(o.endpoint); // throws on a bad URL, before any call
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`XML-RPC endpoint must be http(s): ${o.endpoint}`);
    this.endpoint = o.endpoint;
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBytes = o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
  }

  private fail(method: string, kind: XmlRpcErrorKind, what: string, details: XmlRpcError['details'] = {}): XmlRpcError {
    return new XmlRpcError(`${method} at ${this.endpoint}: ${what}`, kind, method, this.endpoint, details);
  }

  /** One call; answers the decoded value of the reply. A `<fault>` and every other failure throw `XmlRpcError`. */
  async call(method: string, params: readonly XmlRpcValue[]): Promise<XmlRpcValue> {
    const body = encodeMethodCall(method, params);
    const signal = AbortSignal.timeout(this.timeoutMs);
    let xml: string;
    try {
      const res = await request(this.endpoint, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/xml', accept: 'text/xml' },
        signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        ...(this.o.dispatcher ? { dispatcher: this.o.dispatcher } : {}),
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.maxBytes) {
          res.body.destroy();
          throw this.fail(method, 'protocol', `reply larger than ${this.maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      xml = Buffer.concat(chunks).toString('utf8');
      if (res.statusCode !== 200) {
        throw this.fail(method, 'http', `HTTP ${res.statusCode}${xml.trim() ? `: ${xml.trim().slice(0, 200)}` : ''}`, {
          httpStatus: res.statusCode,
        });
      }
    } catch (e) {
      if (e instanceof XmlRpcError) throw e;
      const code = (e as { code?: string }).code;
      if (signal.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
        throw this.fail(method, 'timeout', `no reply within ${this.timeoutMs} ms`);
      }
      throw this.fail(method, 'transport', `cannot reach the endpoint (${describeCause(e)})`);
    }
    let reply: MethodResponse;
    try {
      reply = decodeMethodResponse(xml);
    } catch (e) {
      throw this.fail(method, 'protocol', `unreadable reply (${(e as Error).message})`);
    }
    if (!reply.ok) {
      throw this.fail(method, 'fault', `XML-RPC fault ${reply.faultCode}: ${reply.faultString}`, { faultCode: reply.faultCode });
    }
    return reply.value;
  }

  /**
   * One OpenNebula call: `session` goes first, then `params`; answers index 1 of a success reply.
   * A failure reply throws `XmlRpcError` of kind `one` with `[NAME] message`.
   */
  async callOne(method: string, session: string, params: readonly XmlRpcValue[]): Promise<XmlRpcValue> {
    const v = await this.call(method, [session, ...params]);
    if (!Array.isArray(v) || v.length < 2 || typeof v[0] !== 'boolean') {
      throw this.fail(method, 'protocol', "reply is not OpenNebula's [ok, value, code, ...] array");
    }
    if (v[0]) return v[1]!;
    const code = typeof v[2] === 'number' ? v[2] : Number(v[2] ?? NaN);
    const name = Number.isNaN(code) ? 'UNKNOWN' : oneErrorName(code);
    const message = typeof v[1] === 'string' ? v[1].trim() : JSON.stringify(v[1]);
    const objectId = typeof v[3] === 'number' ? v[3] : undefined;
    throw this.fail(method, 'one', `[${name}] ${message}`, {
      oneCode: code,
      oneCodeName: name,
      ...(objectId !== undefined ? { objectId } : {}),
    });
  }
}
