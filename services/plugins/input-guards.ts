/**
 * The input guards (`installInputGuards`, on the root before any route): what no route's handler
 * or the database should ever see. JSON nested too deep, NUL characters (PostgreSQL text and
 * jsonb cannot store U+0000), integers and numbers beyond what a column holds, JDLs over
 * `config.jdlMaxBytes`: each is a 400 (413 for size) naming where, never a database error.
 */
import type { FastifyInstance, RouteOptions, preValidationAsyncHookHandler } from 'fastify';
import type { ServiceConfig } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import { INT4_MAX } from '../../core/job-model.js';
import { formatBytes } from './errors.js';

/** JSON bodies nested deeper than this are refused (400) as they are parsed. */
export const MAX_JSON_DEPTH = 32;
/**
 * Bound of a number field that declares none: the largest millisecond timestamp a JavaScript
 * Date holds (8.64e15, below 2^53), so any number may become a Date or a bigint exactly.
 */
export const NUMBER_MAX = 8.64e15;

function invalid(path: string, message: string): WmsError {
  return new WmsError('WMS_VALIDATION', `invalid request: ${path} ${message}`, { details: { problems: [{ path, message }] } });
}

function nulIn(path: string): WmsError {
  return invalid(path, 'contains a NUL character (\\u0000)');
}

/** True when `value` has objects or arrays nested deeper than `max` (iterative: no recursion). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const child of Object.values(v as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

function isPlainData(v: unknown): v is Record<string, unknown> | unknown[] {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return true;
  // Plain objects, null-prototype ones, and fast-querystring's (an empty class over null).
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === Object.prototype || proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * The path (`body/jdls/3`, `querystring/site`) of the first string or key holding a NUL
 * character, or null. PostgreSQL text and jsonb cannot store U+0000; walked iteratively.
 */
export function findNul(value: unknown, root: string): string | null {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (isPlainData(v)) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return `${path}/${JSON.stringify(k).slice(1, -1)}`;
        stack.push([child, `${path}/${k}`]);
      }
    }
  }
  return null;
}

type Schema = Record<string, unknown>;

/** A copy of `o` with every own property (TypeBox keeps `~kind` non-enumerable). */
function copyOf(o: Schema): Schema {
  return Object.defineProperties({}, Object.getOwnPropertyDescriptors(o)) as Schema;
}

const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;
const SUBSCHEMA_ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else'] as const;
const SUBSCHEMA_MAPS = ['properties', 'patternProperties'] as const;

function hasType(schema: Schema, type: string): boolean {
  const t = schema['type'];
  return t === type || (Array.isArray(t) && t.includes(type));
}

/**
 * `schema` with a bound on every integer and number that declares none (integers: int4,
 * INT4_MAX;
 * numbers: ±NUMBER_MAX), so a value beyond what a column holds is a 400 naming the field,
 * never a database error. Copy on write: shared schema objects are never changed.
 */
export function withBounds(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const src = schema as Schema;
  let out = src;
  const set = (key: string, value: unknown) => {
    if (out === src) out = copyOf(src);
    out[key] = value;
  };
  const noMax = src['maximum'] === undefined && src['exclusiveMaximum'] === undefined;
  const noMin = src['minimum'] === undefined && src['exclusiveMinimum'] === undefined;
  if (hasType(src, 'integer')) {
    if (noMax) set('maximum', INT4_MAX);
    if (noMin) set('minimum', -INT4_MAX - 1);
  } else if (hasType(src, 'number')) {
    if (noMax) set('maximum', NUMBER_MAX);
    if (noMin) set('minimum', -NUMBER_MAX);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = src[key];
    if (!Array.isArray(list)) continue;
    const next = list.map(withBounds);
    if (next.some((n, i) => n !== list[i])) set(key, next);
  }
  for (const key of SUBSCHEMA_ONE) {
    const sub = src[key];
    if (sub === undefined || typeof sub === 'boolean') continue;
    if (Array.isArray(sub)) {
      const next = sub.map(withBounds);
      if (next.some((n, i) => n !== sub[i])) set(key, next);
    } else {
      const next = withBounds(sub);
      if (next !== sub) set(key, next);
    }
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = src[key] as Schema | undefined;
    if (!map || typeof map !== 'object') continue;
    let changed = false;
    const next: Schema = {};
    for (const [k, v] of Object.entries(map)) {
      next[k] = withBounds(v);
      if (next[k] !== v) changed = true;
    }
    if (changed) set(key, next);
  }
  return out;
}

/**
 * Does a body schema carry JDLs (`jdl`, `jdls`)? Those routes get the JDL size check. A body
 * given as `{ $ref: "<Name>#" }` is looked up among the shared schemas (`shared`).
 */
function carriesJdl(body: unknown, shared: (id: string) => unknown): boolean {
  const ref = (body as { $ref?: unknown } | undefined)?.$ref;
  const schema = typeof ref === 'string' ? shared(ref.replace(/#$/, '')) : body;
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props !== undefined && ('jdl' in props || 'jdls' in props);
}

function hooksOf<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * The input guards, on the root before any route:
 * - `application/json` bodies are parsed by fastify's own parser (prototype poisoning refused)
 *   and refused past MAX_JSON_DEPTH levels (20,000 levels once reached PostgreSQL's stack limit);
 * - every route's params, querystring, headers and body schemas get bounds (`withBounds`; the
 *   shared request shapes of api/ get theirs when they are added, see plugins/openapi.ts);
 * - a NUL character anywhere in the body, query, params or headers is a 400 naming where (the
 *   body as it is parsed, the rest before validation);
 * - routes whose body carries JDLs refuse one over `config.jdlMaxBytes` with 413, before the
 *   JDL is parsed or stored.
 */
export function installInputGuards(app: FastifyInstance, config: Readonly<ServiceConfig>): void {
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (err, value) => {
      if (err) return done(err, undefined);
      if (value !== null && typeof value === 'object' && nestedDeeperThan(value, MAX_JSON_DEPTH)) {
        return done(invalid('body', `is nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      }
      // JSON can only carry U+0000 escaped (`\u0000`): one search of the text spares the walk of
      // every body (heartbeats, matches), which is only walked to name where the NUL is.
      const where = (body as string).includes('\\u0000') ? findNul(value, 'body') : null;
      if (where !== null) return done(nulIn(where), undefined);
      return done(null, value);
    });
  });

  const jdlLimit = config.jdlMaxBytes;
  const tooBig = (what: string, bytes: number) =>
    new WmsError('WMS_PAYLOAD_TOO_LARGE', `${what} of ${formatBytes(bytes)} is over the ${formatBytes(jdlLimit)} limit (jdlMaxBytes)`);
  const checkJdlSize: preValidationAsyncHookHandler = async (request) => {
    const body = request.body as { jdl?: unknown; jdls?: unknown } | null | undefined;
    if (!body || typeof body !== 'object') return;
    if (typeof body.jdl === 'string' && body.jdl.length > jdlLimit / 4) {
      const bytes = Buffer.byteLength(body.jdl);
      if (bytes > jdlLimit) throw tooBig('JDL', bytes);
    }
    if (Array.isArray(body.jdls)) {
      body.jdls.forEach((text: unknown, i) => {
        if (typeof text === 'string' && text.length > jdlLimit / 4) {
          const bytes = Buffer.byteLength(text);
          if (bytes > jdlLimit) throw tooBig(`JDL ${i} of the list`, bytes);
        }
      });
    }
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (schema) {
      const bounded: Record<string, unknown> = { ...schema };
      for (const part of ['body', 'querystring', 'params', 'headers']) {
        if (schema[part] !== undefined) bounded[part] = withBounds(schema[part]);
      }
      route.schema = bounded;
      if (carriesJdl(schema['body'], (id) => app.getSchema(id))) route.preValidation = [...hooksOf(route.preValidation), checkJdlSize];
    }
  });

  app.addHook('preValidation', async (request) => {
    const where =
      findNul(request.params, 'params') ??
      findNul(request.query, 'querystring') ??
      findNul(request.headers, 'headers') ??
      // JSON bodies were checked as they were parsed; a text/plain one is a string.
      (typeof request.body === 'string' ? findNul(request.body, 'body') : null);
    if (where !== null) throw nulIn(where);
  });
}
