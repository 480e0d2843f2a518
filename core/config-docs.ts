/**
 * What people read about the configuration, generated from its schema (core/config-schema.ts):
 * the environment and flag help of `wms server`, README's configuration table, and the
 * effective configuration that `wms server config` prints with secrets masked and each value's
 * origin. Pure.
 */
import { CONFIG_ENV_TABLE, CONFIG_FILE_ENV, CONFIG_KEYS, configKey, envVarOf, flagOf, type ConfigKey } from './config-schema.js';
import type { ConfigOrigin, ServiceConfig } from './config.js';
import { formatDuration, formatSize } from './config-units.js';

/** A key's value as people write it: durations as `10m`, sizes as `100MiB`, text bare, the rest as JSON. */
export function formatConfigValue(key: ConfigKey, value: unknown): string {
  if (typeof value === 'number' && (key.schema.unit === 'duration' || key.schema.unit === 'grace')) return formatDuration(value);
  if (typeof value === 'number' && key.schema.unit === 'size') return formatSize(value);
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** A key's default as the help and README say it (a `null` default says what it means). */
export function defaultText(key: ConfigKey): string {
  if (key.schema.default === null && key.schema.defaultText) return key.schema.defaultText;
  return formatConfigValue(key, key.schema.default);
}

/** `description (default …)` of the key at `path`: the help of its flag or variable. */
export function configHelp(path: string): string {
  const key = configKey(path);
  const said = key.schema.default === null && key.schema.defaultText ? `default: ${key.schema.defaultText}` : `default ${defaultText(key)}`;
  return `${key.schema.description ?? path} (${said})`;
}

/** The environment variables `wms server` reads, for its help (`WMS_CONFIG` first). */
export const CONFIG_ENV_VARS: Readonly<Record<string, string>> = Object.freeze({
  [CONFIG_FILE_ENV]: 'path of an optional JSON config file',
  ...Object.fromEntries(Object.entries(CONFIG_ENV_TABLE).map(([name, path]) => [name, configHelp(path)])),
});

/** Text fit for a markdown table cell: pipes escaped, `<dataDir>` kept visible. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, ' ');
}

/** A default in a table cell: values as code, a sentence for a `null` default as text. */
function defaultCell(key: ConfigKey): string {
  if (key.schema.default === null && key.schema.defaultText) return cell(key.schema.defaultText);
  return `\`${defaultText(key)}\``;
}

/**
 * README's configuration table: every key as the config file names it (a key the file may not
 * set, as the code names it), the variable and flag that set it, its default and what it does.
 * `scripts/config-table.mjs` writes it into README.md and a unit test keeps the two equal.
 */
export function configTableMarkdown(): string {
  const code = (text: string | undefined): string => (text ? `\`${text}\`` : '');
  const rows = CONFIG_KEYS.map(
    (key) =>
      `| ${code(key.filePath ?? key.path)} | ${code(envVarOf(key.path))} | ${code(flagOf(key.path))} | ${defaultCell(key)} | ${cell(key.schema.description ?? '')} |`,
  );
  return ['| key | environment | flag | default | description |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

export const CONFIG_TABLE_START = '<!-- config-table:start -->';
export const CONFIG_TABLE_END = '<!-- config-table:end -->';

/** The table between the markers of `readme` (null without markers). */
export function configTableIn(readme: string): string | null {
  const start = readme.indexOf(CONFIG_TABLE_START);
  const end = readme.indexOf(CONFIG_TABLE_END);
  if (start < 0 || end < start) return null;
  return readme.slice(start + CONFIG_TABLE_START.length, end).trim();
}

/** `readme` with `table` between its markers; throws when the markers are missing. */
export function withConfigTable(readme: string, table: string): string {
  const start = readme.indexOf(CONFIG_TABLE_START);
  const end = readme.indexOf(CONFIG_TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${CONFIG_TABLE_START} ... ${CONFIG_TABLE_END} markers`);
  return `${readme.slice(0, start + CONFIG_TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}

// ---------------------------------------------------------------------------------------------
// The effective configuration, masked

/** `url` with its password (and a `password=` parameter) replaced by `***`. */
export function maskUrlPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:)[^?#]*@/i, '$1***@').replace(/([?&]password=)[^&#]*/i, '$1***');
}

/** A key's value fit to print: secrets masked. */
export function maskedValue(key: ConfigKey, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (key.schema.secret === 'value') return '***';
  if (key.schema.secret === 'url') return maskUrlPassword(value);
  return value;
}

/** One line of `wms server config`. */
export interface ConfigEntry {
  /** As the config file names it (or the code, for a key the file may not set). */
  key: string;
  /** Dotted path in the config object. */
  path: string;
  /** Masked. */
  value: unknown;
  origin: ConfigOrigin;
}

function valueAt(o: unknown, path: string): unknown {
  let v: unknown = o;
  for (const part of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
  return v;
}

/** Every key's effective value (masked) and origin, in schema order. */
export function configEntries(config: Readonly<ServiceConfig>, origins: Readonly<Record<string, ConfigOrigin>>): ConfigEntry[] {
  return CONFIG_KEYS.map((key) => ({
    key: key.filePath ?? key.path,
    path: key.path,
    value: maskedValue(key, valueAt(config, key.path)),
    origin: origins[key.path] ?? { source: 'default' },
  }));
}

/** The config object with every secret masked (for `--json`). */
export function maskedConfig(config: Readonly<ServiceConfig>): ServiceConfig {
  const copy = structuredClone(config) as ServiceConfig;
  for (const key of CONFIG_KEYS) {
    if (!key.schema.secret) continue;
    const parts = key.path.split('.');
    const last = parts.pop() as string;
    const parent = valueAt(copy, parts.join('.')) as Record<string, unknown> | undefined;
    const target = parts.length === 0 ? (copy as unknown as Record<string, unknown>) : parent;
    if (target) target[last] = maskedValue(key, target[last]);
  }
  return copy;
}

/** `default`, `file wms.json`, `env WMS_PORT`, `flag --port`. */
export function formatOrigin(origin: ConfigOrigin): string {
  return origin.source === 'default' ? 'default' : `${origin.source} ${origin.name}`;
}

/** The text `wms server config` prints: one key a line, its value and where it came from. */
export function configReport(config: Readonly<ServiceConfig>, origins: Readonly<Record<string, ConfigOrigin>>): string {
  const entries = configEntries(config, origins).map((e) => {
    const key = configKey(e.path);
    return [e.key, e.value === null ? 'null' : formatConfigValue(key, e.value), formatOrigin(e.origin)] as const;
  });
  const keyWidth = Math.max(...entries.map(([k]) => k.length));
  const valueWidth = Math.min(48, Math.max(...entries.map(([, v]) => v.length)));
  return entries.map(([k, v, o]) => `${k.padEnd(keyWidth)}  ${v.padEnd(valueWidth)}  ${o}`).join('\n');
}
