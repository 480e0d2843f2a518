/**
 * `wms server start`: the services, the agents and the local site in this process
 * (cli/server-system.ts). Config: defaults < JSON file (--config / WMS_CONFIG) < env < flags;
 * `wms server config` prints the result and where each value came from. The db/ and services/
 * modules are loaded here only, on demand.
 */
import { resolve } from 'node:path';
import { configEntries, configHelp, configReport, maskedConfig } from '../../core/config-docs.js';
import { CONFIG_FILE_ENV, configKey } from '../../core/config-schema.js';
import {
  CONFIG_ENV_VARS,
  graceOf,
  LOG_LEVELS,
  resolveServiceConfigWithOrigins,
  type ConfigFlags,
  type ConfigOrigin,
  type LogLevel,
  type ServiceConfig,
} from '../../core/config.js';
import { isWmsError } from '../../core/errors.js';
import { flag, int, JSON_OPTION, readTextFile, str, type CommandSpec, type Io, type OptionSpec, type OptionValues } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { json } from '../output.js';

/** The flags every server command reads; their help comes from the config schema. */
export const SERVER_OPTIONS = {
  port: { type: 'string', value: 'N', description: configHelp('port') },
  host: { type: 'string', value: 'H', description: configHelp('host') },
  'data-dir': { type: 'string', value: 'DIR', description: configHelp('dataDir') },
  db: { type: 'string', value: 'URL', description: configHelp('databaseUrl') },
  config: { type: 'string', value: 'FILE', description: `JSON config file (default $${CONFIG_FILE_ENV}; keys: README.md, Configuration)` },
} as const;

/** The flags of `server start` (and `server config`, which shows what they would start with). */
const START_OPTIONS: Record<string, OptionSpec> = {
  ...SERVER_OPTIONS,
  'no-agents': { type: 'boolean', description: `do not ${configKey('agents').schema.description}` },
  'no-local-site': { type: 'boolean', description: `do not ${configKey('localSite').schema.description}` },
  'log-level': { type: 'string', value: 'L', description: configHelp('logLevel') },
  'shutdown-grace': { type: 'string', value: 'T', description: configHelp('shutdownGraceSeconds') },
};

/**
 * The service config from a config file, the environment and the flags (paths resolved
 * against `io.cwd`), with the origin of each value. Throws CliError on a bad value.
 */
export async function serviceConfigWithOrigins(
  values: OptionValues,
  io: Io,
  extra: ConfigFlags = {},
): Promise<{ config: Readonly<ServiceConfig>; origins: Readonly<Record<string, ConfigOrigin>> }> {
  const configPath = str(values, 'config') ?? io.env[CONFIG_FILE_ENV];
  let file: unknown;
  if (configPath) {
    const text = await readTextFile(io, configPath, 'config file');
    try {
      file = JSON.parse(text);
    } catch (e) {
      throw new CliError(`${configPath}: not valid JSON (${(e as Error).message})`);
    }
  }
  const flags: ConfigFlags = { ...extra };
  const port = int(values, 'port', 0);
  if (port !== undefined) flags.port = port;
  const host = str(values, 'host');
  if (host !== undefined) flags.host = host;
  const dataDir = str(values, 'data-dir');
  if (dataDir !== undefined) flags.dataDir = dataDir;
  const db = str(values, 'db');
  if (db !== undefined) flags.databaseUrl = db;
  try {
    const { config, origins } = resolveServiceConfigWithOrigins({ file, fileName: configPath ?? 'config file', env: io.env, flags });
    return { config: Object.freeze({ ...config, dataDir: resolve(io.cwd, config.dataDir) }), origins };
  } catch (e) {
    if (isWmsError(e)) throw new CliError(e.message);
    throw e;
  }
}

/** The service config as serviceConfigWithOrigins, without the origins. */
export async function serviceConfigFrom(values: OptionValues, io: Io, extra: ConfigFlags = {}): Promise<Readonly<ServiceConfig>> {
  return (await serviceConfigWithOrigins(values, io, extra)).config;
}

/** What the flags only `server start` (and `server config`) has set: agents, local site, grace, log level. */
function startFlags(values: OptionValues): ConfigFlags {
  const extra: ConfigFlags = {};
  if (flag(values, 'no-agents')) extra.agents = false;
  if (flag(values, 'no-local-site')) extra.localSite = false;
  const grace = str(values, 'shutdown-grace');
  if (grace !== undefined) {
    let seconds: number | undefined;
    try {
      seconds = graceOf(grace, '--shutdown-grace');
    } catch (e) {
      throw new UsageError(isWmsError(e) ? e.message : String(e));
    }
    if (seconds !== undefined) extra.shutdownGraceSeconds = seconds;
  }
  const level = str(values, 'log-level');
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level))
      throw new UsageError(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
    extra.logLevel = level as LogLevel;
  }
  return extra;
}

const start: CommandSpec = {
  name: ['server', 'start'],
  usage: '[--port 8080] [--host 127.0.0.1] [--data-dir ./var] [--db postgres://…] [--no-agents] [--no-local-site] [--shutdown-grace 10m]',
  summary: 'run the services, the agents and the local site in this process',
  details:
    'On the first start an admin token is written to <data-dir>/admin.token (mode 0600); the CLI\n' +
    'on the same machine finds it there.\n' +
    'The first SIGINT/SIGTERM drains: no new pilots; the local pilots match no more and their\n' +
    'running jobs may finish for --shutdown-grace (default 10m); then (or at a second signal) their\n' +
    'payloads get SIGTERM, then SIGKILL, the jobs they held are rescheduled and the pilots made\n' +
    'final; then the agents, the services and the database close. A third signal exits at once.\n' +
    'Every start makes <data-dir> private (0700, files below 0600: it holds admin.token, the\n' +
    'sandboxes and, without --db, the signing key) and refuses one owned by another user.\n' +
    "Local pilots get an environment of their own, never the server's; when the server runs as\n" +
    'root they run as pilot.localUser (default nobody).',
  options: START_OPTIONS,
  env: CONFIG_ENV_VARS,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const config = await serviceConfigFrom(values, io, startFlags(values));
    const { startSystem } = await import('../server-system.js');
    let system;
    try {
      system = await startSystem(config); // its diagnostics: pino on stderr, at config.logLevel
    } catch (e) {
      if (isWmsError(e)) throw new CliError(e.message);
      const code = (e as { code?: string }).code;
      if (code === 'EADDRINUSE') throw new CliError(`${config.host}:${config.port} is already in use (--port)`);
      throw e;
    }
    const server = system.server;
    const db = config.databaseUrl ? config.databaseUrl.replace(/\/\/[^@/]*@/, '//***@') : `PGlite in ${resolve(config.dataDir, 'db')}`;
    io.out(`pilot-wms listening on ${server.url}  (API docs: ${server.url}/docs)`);
    io.out(`  database:    ${db}`);
    io.out(`  admin token: ${server.adminTokenPath}${server.adminTokenWritten ? ' (new)' : ''}`);
    io.out(`  dashboard:   ${server.url}/  (sign in with a token)`);
    io.out(`  services:    jobs, matcher, pilots, sites, sandboxes, tokens, accounting, events, /metrics`);
    io.out(`  agents:      ${system.runner ? system.runner.agentNames.join(', ') : 'off (--no-agents)'}`);
    io.out(`  local site:  ${config.localSite ? `${system.localSlots} pilot slot(s) on this machine` : 'off (--no-local-site)'}`);
    io.out(
      `  stop with Ctrl-C: running jobs get ${config.shutdownGraceSeconds} s to finish (twice: stop them now; three times: exit at once)`,
    );
    const force = new AbortController();
    return {
      done: new Promise<number>(() => undefined),
      stopMessage: 'stopping',
      drain: () => system.shutdown({ force: force.signal, log: (line) => io.err(`wms: ${line}`) }),
      force: () => force.abort(),
    };
  },
};

const migrate: CommandSpec = {
  name: ['server', 'migrate'],
  usage: '[--data-dir ./var] [--db postgres://…]',
  summary: 'apply the database migrations and exit (server start applies them too)',
  details: 'Safe to run while other processes use the database: migrations run under a lock, once.',
  options: { 'data-dir': SERVER_OPTIONS['data-dir'], db: SERVER_OPTIONS.db, config: SERVER_OPTIONS.config },
  env: CONFIG_ENV_VARS,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const config = await serviceConfigFrom(values, io);
    const { migrateDatabase, databaseTarget } = await import('../../services/server.js');
    try {
      await migrateDatabase(config, (line) => io.err(line));
    } catch (e) {
      if (isWmsError(e)) throw new CliError(e.message);
      throw e;
    }
    const where = config.databaseUrl ? config.databaseUrl.replace(/\/\/[^@/]*@/, '//***@') : databaseTarget(config);
    io.out(`database migrated: ${where}`);
    return 0;
  },
};

/** The agents `wms server agents` runs: the site director and agents/runner.ts standardAgents (a unit test keeps them equal). */
export const AGENT_NAMES = ['site-director', 'pilot-status', 'stalled-jobs', 'job-cleaning', 'accounting'];

const agents: CommandSpec = {
  name: ['server', 'agents'],
  usage: '[--once [NAME,...]] [--data-dir ./var] [--db postgres://…]',
  summary: 'run the agents alone (site director, pilot status, stalled jobs, job cleaning, accounting)',
  details:
    'For operators who run the services elsewhere: the agents work on the database, each tick\n' +
    'under a lease, so several agent processes never act at the same time and each scheduled\n' +
    'period runs once across them (their clocks kept right by NTP). On the embedded database\n' +
    '(no --db) only one process may open the data directory: refused while a server runs on it.\n' +
    'Pilots call home to WMS_PUBLIC_URL (or publicUrl in the config file). --once runs one\n' +
    'tick of each named agent now (not a scheduled period: never refused for one),\n' +
    `(default: all: ${AGENT_NAMES.join(', ')}), prints what it did, and exits.`,
  options: {
    'data-dir': SERVER_OPTIONS['data-dir'],
    db: SERVER_OPTIONS.db,
    config: SERVER_OPTIONS.config,
    once: { type: 'boolean', description: 'one tick of each agent, then exit' },
    only: { type: 'string', value: 'NAMES', description: 'comma-separated agents to run (with or without --once)' },
  },
  env: CONFIG_ENV_VARS,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const only = str(values, 'only')
      ?.split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const unknown = (only ?? []).filter((n) => !AGENT_NAMES.includes(n));
    if (unknown.length > 0) throw new UsageError(`--only: unknown agent(s) ${unknown.join(', ')} (known: ${AGENT_NAMES.join(', ')})`);
    const config = await serviceConfigFrom(values, io);
    const { commandLogger, startAgents } = await import('../server-system.js');
    let running;
    try {
      running = await startAgents(config, { logger: commandLogger(config, io.err) });
    } catch (e) {
      if (isWmsError(e)) throw new CliError(e.message);
      throw e;
    }
    const names = only ?? AGENT_NAMES;
    if (flag(values, 'once')) {
      try {
        for (const name of names) {
          const r = await running.runner.runOnce(name);
          io.out(`${name}: ${r.ran ? r.outcome : `not run: ${r.outcome}`}`);
        }
      } finally {
        await running.close();
      }
      return 0;
    }
    running.runner.start(only);
    io.out(`agents running: ${names.join(', ')} (stop with Ctrl-C)`);
    const force = new AbortController();
    return {
      done: new Promise<number>(() => undefined),
      stopMessage: 'stopping',
      drain: () => running.shutdown({ force: force.signal, log: (line) => io.err(`wms: ${line}`) }),
      force: () => force.abort(),
    };
  },
};

const showConfig: CommandSpec = {
  name: ['server', 'config'],
  usage: '[--config FILE] [--port 8080] [--host 127.0.0.1] [--data-dir ./var] [--db postgres://…] [--json]',
  summary: 'print the configuration server start would run with, and where each value came from',
  details:
    'Reads the config file, the environment and the flags as `server start` does (defaults < file\n' +
    '< environment < flags) and prints every key as the config file names it, its value and its\n' +
    'origin: default, file FILE, env WMS_..., or flag --.... Secrets are masked: the metrics token\n' +
    'and the password of the database URL. --json prints { config, sources }: the config object as\n' +
    'the code reads it (secrets masked) and the origin of each of its dotted paths.',
  options: { ...START_OPTIONS, json: JSON_OPTION },
  env: CONFIG_ENV_VARS,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const { config, origins } = await serviceConfigWithOrigins(values, io, startFlags(values));
    if (flag(values, 'json')) {
      const sources = Object.fromEntries(configEntries(config, origins).map((e) => [e.path, e.origin]));
      io.out(json({ config: maskedConfig(config), sources }));
    } else {
      io.out(configReport(config, origins));
    }
    return 0;
  },
};

export const serverCommands: CommandSpec[] = [start, showConfig, agents, migrate];
