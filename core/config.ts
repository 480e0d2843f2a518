/**
 * The services' configuration: one frozen object built once in `main()` and passed down.
 * Sources, later wins: defaults < config file (JSON) < environment (`WMS_*`) < command-line
 * flags. Every key is declared once, in core/config-schema.ts; this module merges the sources
 * key by key along that schema and remembers where each value came from (`wms server config`).
 * Nothing below `main()` reads `process.env`; this module is pure (the caller reads the file
 * and hands over the environment as a plain record).
 */
import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import {
  AgentsSchema,
  CONFIG_ENV_TABLE,
  CONFIG_FLAG_TABLE,
  CONFIG_KEYS,
  configKey,
  enumValues,
  isKeyObject,
  PilotSchema,
  RateLimitSchema,
  ServiceConfigSchema,
  TokensSchema,
  type ConfigFlags,
  type ConfigKey,
  type KeyMeta,
} from './config-schema.js';
import { maskUrlPassword } from './config-docs.js';
import { parseDuration, parseSize } from './config-units.js';
import { WmsError } from './errors.js';
import { PILOT_COMMANDS } from './pilot-protocol.js';

export { LOG_LEVELS, LOCAL_ISOLATIONS, type LogLevel, type LocalIsolation, type ConfigFlags } from './config-schema.js';
export { MAX_DURATION_SECONDS, parseDuration, parseSize } from './config-units.js';
export { CONFIG_ENV_VARS, maskUrlPassword } from './config-docs.js';

export type ServiceConfig = Static<typeof ServiceConfigSchema>;
export type TokenConfig = Static<typeof TokensSchema>;
export type AgentsConfig = Static<typeof AgentsSchema>;
export type PilotSettings = Static<typeof PilotSchema>;
export type RateLimitConfig = Static<typeof RateLimitSchema>;

/** Where one value of the effective configuration came from. */
export type ConfigOrigin =
  { source: 'default' } | { source: 'file'; name: string } | { source: 'env'; name: string } | { source: 'flag'; name: string };

/** The `default` of every key of `schema`, as a fresh object (leaves are copied). */
function defaultsOf(schema: TSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries((schema as { properties: Record<string, TSchema & KeyMeta> }).properties)) {
    out[name] = isKeyObject(child) ? defaultsOf(child) : structuredClone(child.default);
  }
  return out;
}

export const DEFAULT_SERVICE_CONFIG: Readonly<ServiceConfig> = deepFreeze(defaultsOf(ServiceConfigSchema) as ServiceConfig);

function configError(where: string, message: string): WmsError {
  return new WmsError('WMS_CONFIG', `${where}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Values as text: durations, sizes, integers, booleans

function durationOf(v: number | string, where: string): number {
  const n = typeof v === 'number' ? v : parseDuration(v);
  if (n === null) throw configError(where, `"${String(v)}" is not a duration (e.g. 30d, 12h, 3600)`);
  return n;
}

/** A grace period: a duration as `durationOf`, or 0 (no grace). */
export function graceOf(v: number | string | undefined, where: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 0 || (typeof v === 'string' && /^\s*0+\s*[smhdw]?\s*$/i.test(v))) return 0;
  return durationOf(v, where);
}

function sizeOf(v: number | string, where: string): number {
  const n = typeof v === 'number' ? v : parseSize(v);
  if (n === null) throw configError(where, `"${String(v)}" is not a size (e.g. 100MiB, 1048576)`);
  return n;
}

/** A key written with a unit (`30d`, `100MiB`) in seconds or bytes; other values as they are. */
function withUnit(key: ConfigKey, v: unknown, where: string): unknown {
  switch (key.schema.unit) {
    case 'duration':
      return durationOf(v as number | string, where);
    case 'grace':
      return graceOf(v as number | string, where);
    case 'size':
      return sizeOf(v as number | string, where);
    default:
      return v;
  }
}

function intOf(v: string, where: string, min: number, max: number | undefined): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw configError(where, `"${v}" is not an integer >= ${min}`);
  }
  if (max !== undefined && Number(v) > max) throw configError(where, `above ${max}`);
  return Number(v);
}

function boolOf(v: string, where: string): boolean {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw configError(where, `"${v}" is not a boolean (1/0, true/false)`);
}

/** Why `value` does not fit the key's schema (the text member of a nullable key), or null. */
function leafProblem(schema: TSchema, value: unknown): string | null {
  const members = (schema as { anyOf?: TSchema[] }).anyOf;
  const target = members?.find((m) => (m as { type?: unknown }).type === typeof value) ?? schema;
  if (Value.Check(target, value)) return null;
  const values = enumValues(target);
  if (values) return `is not one of ${values.join(', ')}`;
  return [...Value.Errors(target, value)][0]?.message ?? 'is not valid';
}

type EnvKind = 'int' | 'bool' | 'enum' | 'text' | 'unit';

/** How the text of a variable that sets `key` is read, from the key's schema. */
function envKindOf(key: ConfigKey): EnvKind {
  const s = key.schema as { type?: unknown; anyOf?: { type?: unknown }[] };
  if (key.schema.unit) return 'unit';
  if (enumValues(key.schema)) return 'enum';
  if (s.type === 'integer') return 'int';
  if (s.type === 'boolean') return 'bool';
  if (s.type === 'string' || s.anyOf?.some((m) => m.type === 'string')) return 'text';
  throw new Error(`config key ${key.path}: no environment variable can set it`);
}

/** Each variable's key and how it is read, checked when this module loads. */
const ENV_KEYS = Object.entries(CONFIG_ENV_TABLE).map(([name, path]) => {
  const key = configKey(path);
  return { name, key, kind: envKindOf(key) };
});

function envValue(name: string, text: string, key: ConfigKey, kind: EnvKind): unknown {
  const s = key.schema as { minimum?: number; maximum?: number };
  switch (kind) {
    case 'unit':
      return withUnit(key, text, name);
    case 'int':
      return intOf(text, name, s.minimum ?? 0, s.maximum);
    case 'bool':
      return boolOf(text, name);
    case 'enum':
    case 'text': {
      const problem = leafProblem(key.schema, text);
      if (problem) throw configError(name, `"${text}" ${problem}`);
      return text;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The config file

/** The config file's schema of the keys below `schema`: every key optional, named as in the file, units as text. */
function fileSchemaOf(schema: TSchema): TSchema {
  const props: Record<string, TSchema> = {};
  for (const [name, child] of Object.entries((schema as { properties: Record<string, TSchema & KeyMeta> }).properties)) {
    if (child.file === false) continue;
    props[child.file ?? name] = Type.Optional(isKeyObject(child) ? fileSchemaOf(child) : fileLeafOf(child));
  }
  return Type.Object(props, { additionalProperties: false });
}

function fileLeafOf(schema: TSchema & KeyMeta): TSchema {
  if (schema.unit === 'grace') return Type.Union([Type.Integer({ minimum: 0 }), Type.String()]);
  if (schema.unit) return Type.Union([Type.Integer({ minimum: 1 }), Type.String()]);
  return schema;
}

/** The optional JSON config file: every key optional; durations and sizes as numbers or text. */
export const ConfigFileSchema: TSchema = fileSchemaOf(ServiceConfigSchema);

/** The config file's problems, one line each (`/path: what is wrong`), empty when it is valid. */
export function configFileProblems(file: unknown): string[] {
  if (Value.Check(ConfigFileSchema, file)) return [];
  const byPath = new Map<string, TValidationError[]>();
  for (const e of Value.Errors(ConfigFileSchema, file)) {
    if (e.keyword === 'boolean') continue;
    const path = e.instancePath === '' ? '/' : e.instancePath;
    byPath.set(path, [...(byPath.get(path) ?? []), e]);
  }
  return [...byPath].flatMap(([path, errors]) => [...new Set(problemsAt(errors))].map((p) => `${path}: ${p}`));
}

type TValidationError = ReturnType<typeof Value.Errors>[number];

/**
 * What is wrong at one path: unknown keys and allowed values spelled out; a value that fits
 * no member of a union (`30d` or seconds, text or null) says what would fit rather than each
 * member's complaint.
 */
function problemsAt(errors: TValidationError[]): string[] {
  const inUnion = errors.some((e) => e.keyword === 'anyOf');
  const specific = errors.filter((e) => e.keyword !== 'anyOf' && !(inUnion && e.keyword === 'type'));
  if (inUnion && specific.length === 0) {
    const types = errors.flatMap((e) => (e.keyword === 'type' ? [String((e.params as { type?: unknown }).type)] : []));
    return [`must be ${types.join(' or ')}`];
  }
  return specific.map((e) => {
    const params = e.params as { additionalProperties?: string[]; allowedValues?: unknown[] };
    if (params.additionalProperties) return `unknown key(s) ${params.additionalProperties.join(', ')}`;
    if (params.allowedValues) return `must be one of ${params.allowedValues.join(', ')}`;
    return e.message;
  });
}

// ---------------------------------------------------------------------------------------------
// Merging

export interface ConfigSources {
  /** The parsed JSON config file, if any. */
  file?: unknown;
  /** Where the file came from, for error messages and origins. */
  fileName?: string;
  /** The environment (pass `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  flags?: ConfigFlags;
}

/** One value a source sets. */
interface Assignment {
  key: ConfigKey;
  value: unknown;
  origin: ConfigOrigin;
}

function valueAt(o: unknown, path: string): unknown {
  let v: unknown = o;
  for (const part of path.split('.')) v = v === null || typeof v !== 'object' ? undefined : (v as Record<string, unknown>)[part];
  return v;
}

function setAt(o: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  const last = parts.pop() as string;
  let target = o;
  for (const part of parts) target = target[part] as Record<string, unknown>;
  target[last] = value;
}

/** What a valid config file sets, units converted (a bad duration or size names file and key). */
function fileAssignments(file: unknown, fileName: string): Assignment[] {
  const problems = configFileProblems(file);
  if (problems.length > 0) throw configError(fileName, problems.join('; '));
  const origin: ConfigOrigin = { source: 'file', name: fileName };
  return CONFIG_KEYS.flatMap((key) => {
    const raw = key.filePath === null ? undefined : valueAt(file, key.filePath);
    if (raw === undefined) return [];
    return [{ key, value: withUnit(key, structuredClone(raw), `${fileName}: ${key.filePath}`), origin }];
  });
}

/** What the `WMS_*` variables set; empty ones are ignored. */
function envAssignments(env: Readonly<Record<string, string | undefined>>): Assignment[] {
  return ENV_KEYS.flatMap(({ name, key, kind }) => {
    const text = env[name];
    if (text === undefined || text === '') return [];
    return [{ key, value: envValue(name, text, key, kind), origin: { source: 'env', name } satisfies ConfigOrigin }];
  });
}

/** What the flags set, each checked against its key's schema. */
function flagAssignments(flags: ConfigFlags): Assignment[] {
  return Object.entries(CONFIG_FLAG_TABLE).flatMap(([path, name]) => {
    const value = (flags as Record<string, unknown>)[path];
    if (value === undefined) return [];
    const key = configKey(path);
    const problem = leafProblem(key.schema, value);
    if (problem) throw configError(name, `"${String(value)}" ${problem}`);
    return [{ key, value, origin: { source: 'flag', name } satisfies ConfigOrigin }];
  });
}

/** How an error names the key at `path`: the variable, the flag or the file key that set it. */
function whereOf(path: string, origins: Readonly<Record<string, ConfigOrigin>>): string {
  const origin = origins[path];
  if (origin?.source === 'file') return `${origin.name}: ${configKey(path).filePath ?? path}`;
  if (origin?.source === 'env' || origin?.source === 'flag') return origin.name;
  return path;
}

/** The checks that span keys, and the pilot commands' names, once everything is merged. */
function checkMerged(config: ServiceConfig, origins: Readonly<Record<string, ConfigOrigin>>): void {
  if (config.jobLimits.minCpuTime > config.jobLimits.maxCpuTime) {
    throw configError('jobLimits', `minCpuTime is above maxCpuTime (${config.jobLimits.minCpuTime} > ${config.jobLimits.maxCpuTime})`);
  }
  const unknownCommands = Object.entries(config.pilot.commands).flatMap(([type, list]) =>
    list.filter((c) => !(PILOT_COMMANDS as readonly string[]).includes(c)).map((c) => `${type}: ${c}`),
  );
  const commands = whereOf('pilot.commands', origins);
  if (unknownCommands.length > 0) {
    throw configError(commands, `unknown command(s) ${unknownCommands.join(', ')} (known: ${PILOT_COMMANDS.join(', ')})`);
  }
  if (!config.pilot.commands['default']) throw configError(commands, 'needs a "default" list');
  if (config.databaseUrl !== null && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    throw configError(whereOf('databaseUrl', origins), `"${maskUrlPassword(config.databaseUrl)}" is not a postgres:// URL`);
  }
  if (config.listDefaultLimit > config.listMaxLimit) {
    throw configError(whereOf('listDefaultLimit', origins), `${config.listDefaultLimit} is above listMaxLimit (${config.listMaxLimit})`);
  }
}

/**
 * Merges defaults < file < env < flags, key by key, into one deep-frozen ServiceConfig and the
 * origin of each key (by its dotted path). Throws WMS_CONFIG naming the source and key of the
 * first bad value. `dataDir` is returned as given (the caller resolves it against its working
 * directory).
 */
export function resolveServiceConfigWithOrigins(sources: ConfigSources = {}): {
  config: Readonly<ServiceConfig>;
  origins: Readonly<Record<string, ConfigOrigin>>;
} {
  const assignments = [
    ...(sources.file === undefined ? [] : fileAssignments(sources.file, sources.fileName ?? 'config file')),
    ...envAssignments(sources.env ?? {}),
    ...flagAssignments(sources.flags ?? {}),
  ];
  const config = defaultsOf(ServiceConfigSchema);
  const origins: Record<string, ConfigOrigin> = Object.fromEntries(CONFIG_KEYS.map((k) => [k.path, { source: 'default' }]));
  for (const { key, value, origin } of assignments) {
    setAt(config, key.path, value);
    origins[key.path] = origin;
  }
  checkMerged(config as ServiceConfig, origins);
  return { config: deepFreeze(config as ServiceConfig), origins: deepFreeze(origins) };
}

/** The effective configuration: see resolveServiceConfigWithOrigins. */
export function resolveServiceConfig(sources: ConfigSources = {}): Readonly<ServiceConfig> {
  return resolveServiceConfigWithOrigins(sources).config;
}

/** Freezes `o` and everything reachable from it. */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
