import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_ENV_VARS,
  ConfigFileSchema,
  DEFAULT_SERVICE_CONFIG,
  parseDuration,
  parseSize,
  resolveServiceConfig,
  resolveServiceConfigWithOrigins,
} from '../../core/config.js';
import {
  configEntries,
  configHelp,
  configReport,
  configTableIn,
  configTableMarkdown,
  maskedConfig,
  maskUrlPassword,
  withConfigTable,
} from '../../core/config-docs.js';
import { CONFIG_ENV_TABLE, CONFIG_FLAG_TABLE, CONFIG_KEYS, configKey } from '../../core/config-schema.js';
import { formatDuration, formatSize } from '../../core/config-units.js';
import { DEFAULT_JOB_LIMITS } from '../../core/job-model.js';

describe('units', () => {
  it('durations', () => {
    expect(parseDuration('30d')).toBe(30 * 86400);
    expect(parseDuration('12h')).toBe(43200);
    expect(parseDuration('90m')).toBe(5400);
    expect(parseDuration('2w')).toBe(14 * 86400);
    expect(parseDuration('3600')).toBe(3600);
    for (const bad of ['', '0', '-1d', '1y', 'd', '1.5h']) expect(parseDuration(bad)).toBeNull();
  });

  it('sizes', () => {
    expect(parseSize('100MiB')).toBe(100 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('500kB')).toBe(500_000);
    expect(parseSize('2M')).toBe(2 * 1024 * 1024);
    expect(parseSize('4096')).toBe(4096);
    for (const bad of ['', '0', 'MiB', '1 parsec', '-1']) expect(parseSize(bad)).toBeNull();
  });
});

describe('resolveServiceConfig: defaults < file < env < flags', () => {
  it('defaults', () => {
    const c = resolveServiceConfig();
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: './var', databaseUrl: null, agents: true });
    expect(c.jobLimits).toEqual({ ...DEFAULT_JOB_LIMITS });
    expect(c.sandboxMaxBytes).toBe(100 * 1024 * 1024);
    // Job and registered-pilot tokens are short and renewed; the wrapper's pilot token outlives a queue wait.
    expect(c.tokens.jobTtlSeconds).toBe(3600);
    expect(c.tokens.pilotSessionTtlSeconds).toBe(3600);
    expect(c.tokens.pilotTtlSeconds).toBeGreaterThanOrEqual(86400);
    expect(c.tokens.revocationPollSeconds).toBe(2);
  });

  it('is deeply frozen', () => {
    const c = resolveServiceConfig();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.jobLimits)).toBe(true);
    expect(Object.isFrozen(c.tokens)).toBe(true);
    expect(Object.isFrozen(DEFAULT_SERVICE_CONFIG)).toBe(true);
  });

  it('each layer wins over the one before', () => {
    const file = { port: 9000, host: '0.0.0.0', jobLimits: { maxParametricJobs: 50 }, tokens: { userTtl: '7d' }, sandboxMaxBytes: '1MiB' };
    expect(resolveServiceConfig({ file }).port).toBe(9000);
    expect(resolveServiceConfig({ file }).jobLimits.maxParametricJobs).toBe(50);
    expect(resolveServiceConfig({ file }).tokens.userTtlSeconds).toBe(7 * 86400);
    expect(resolveServiceConfig({ file }).sandboxMaxBytes).toBe(1024 * 1024);
    const env = { WMS_PORT: '9100', WMS_MAX_PARAMETRIC_JOBS: '20', WMS_SANDBOX_MAX_SIZE: '2MiB', WMS_DATABASE_URL: 'postgres://u@h/db' };
    const withEnv = resolveServiceConfig({ file, env });
    expect(withEnv).toMatchObject({ port: 9100, host: '0.0.0.0', sandboxMaxBytes: 2 * 1024 * 1024, databaseUrl: 'postgres://u@h/db' });
    expect(withEnv.jobLimits.maxParametricJobs).toBe(20);
    const withFlags = resolveServiceConfig({ file, env, flags: { port: 9200, agents: false } });
    expect(withFlags).toMatchObject({ port: 9200, agents: false });
  });

  it('empty env values are ignored', () => {
    expect(resolveServiceConfig({ env: { WMS_PORT: '', WMS_HOST: '' } })).toMatchObject({ port: 8080, host: '127.0.0.1' });
  });

  it("the local site's payload isolation: auto by default, none for a laptop, from the file or WMS_LOCAL_ISOLATION", () => {
    expect(resolveServiceConfig({}).pilot.localIsolation).toBe('auto');
    expect(resolveServiceConfig({ env: { WMS_LOCAL_ISOLATION: 'none' } }).pilot.localIsolation).toBe('none');
    expect(resolveServiceConfig({ file: { pilot: { localIsolation: 'bwrap' } } }).pilot.localIsolation).toBe('bwrap');
    expect(() => resolveServiceConfig({ env: { WMS_LOCAL_ISOLATION: 'off' } })).toThrow(/WMS_LOCAL_ISOLATION.*auto, bwrap, user, none/);
    expect(() => resolveServiceConfig({ file: { pilot: { localIsolation: 'off' } } })).toThrow(/localIsolation/);
  });

  it('shutdownGrace: 10 min by default; file < WMS_SHUTDOWN_GRACE < --shutdown-grace; 0 allowed', () => {
    expect(resolveServiceConfig({}).shutdownGraceSeconds).toBe(600);
    expect(resolveServiceConfig({ file: { shutdownGrace: '2m' } }).shutdownGraceSeconds).toBe(120);
    expect(resolveServiceConfig({ file: { shutdownGrace: 45 }, env: { WMS_SHUTDOWN_GRACE: '30s' } }).shutdownGraceSeconds).toBe(30);
    expect(resolveServiceConfig({ env: { WMS_SHUTDOWN_GRACE: '30s' }, flags: { shutdownGraceSeconds: 0 } }).shutdownGraceSeconds).toBe(0);
    expect(resolveServiceConfig({ env: { WMS_SHUTDOWN_GRACE: '0' } }).shutdownGraceSeconds).toBe(0);
    expect(() => resolveServiceConfig({ env: { WMS_SHUTDOWN_GRACE: 'soon' } })).toThrow(/WMS_SHUTDOWN_GRACE.*not a duration/);
    expect(() => resolveServiceConfig({ file: { shutdownGrace: 'soon' } })).toThrow(/shutdownGrace/);
  });

  it('bad values name their source', () => {
    expect(() => resolveServiceConfig({ env: { WMS_PORT: 'eighty' } })).toThrow(/WMS_PORT/);
    expect(() => resolveServiceConfig({ env: { WMS_MAX_PARAMETRIC_JOBS: '0' } })).toThrow(/WMS_MAX_PARAMETRIC_JOBS/);
    expect(() => resolveServiceConfig({ env: { WMS_LOG_LEVEL: 'loud' } })).toThrow(/WMS_LOG_LEVEL/);
    expect(() => resolveServiceConfig({ env: { WMS_DATABASE_URL: 'mysql://x' } })).toThrow(/postgres/);
    expect(() => resolveServiceConfig({ file: { prot: 1 }, fileName: 'wms.json' })).toThrow(/wms.json.*unknown key.*prot/);
    expect(() => resolveServiceConfig({ file: { tokens: { jobTtl: 'soon' } } })).toThrow(/jobTtl/);
    expect(() => resolveServiceConfig({ file: { port: 'x' } })).toThrow(/port/);
    try {
      resolveServiceConfig({ env: { WMS_AGENTS: 'maybe' } });
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('WMS_CONFIG');
    }
  });
});

describe('the schema: every key declared once, with a default and a description', () => {
  it('every key has a default that fits its own schema, and a description', () => {
    expect(CONFIG_KEYS.length).toBeGreaterThanOrEqual(80);
    for (const key of CONFIG_KEYS) {
      expect(key.schema.default, key.path).not.toBeUndefined();
      expect(key.schema.description, key.path).toMatch(/\w/);
    }
  });

  it('the defaults are the schema defaults, and the file schema accepts every default written as the file names it', () => {
    const file: Record<string, unknown> = {};
    for (const key of CONFIG_KEYS) {
      expect(
        key.path.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], DEFAULT_SERVICE_CONFIG),
        key.path,
      ).toEqual(key.schema.default);
      if (key.filePath === null) continue;
      const parts = key.filePath.split('.');
      const last = parts.pop()!;
      let target = file;
      for (const p of parts) target = (target[p] ??= {}) as Record<string, unknown>;
      target[last] = key.schema.default;
    }
    expect(resolveServiceConfig({ file })).toEqual(DEFAULT_SERVICE_CONFIG);
    expect(ConfigFileSchema).toBeTruthy();
  });

  it('keeps every environment variable of before, each mapped to a key', () => {
    const names = [
      'WMS_CONFIG',
      'WMS_HOST',
      'WMS_PORT',
      'WMS_DATA_DIR',
      'WMS_DATABASE_URL',
      'WMS_DB_POOL_SIZE',
      'WMS_LOG_LEVEL',
      'WMS_MAX_PARAMETRIC_JOBS',
      'WMS_MAX_JOBS_PER_SUBMISSION',
      'WMS_MAX_RESCHEDULING',
      'WMS_SANDBOX_MAX_SIZE',
      'WMS_JDL_MAX_SIZE',
      'WMS_ALLOW_UNREGISTERED_SITES',
      'WMS_TRUST_PROXY',
      'WMS_TOKEN_TTL',
      'WMS_JOB_TOKEN_TTL',
      'WMS_AGENTS',
      'WMS_LOCAL_SITE',
      'WMS_SHUTDOWN_GRACE',
      'WMS_LOCAL_ISOLATION',
      'WMS_PUBLIC_URL',
      'WMS_METRICS_TOKEN',
    ];
    expect(Object.keys(CONFIG_ENV_VARS).sort()).toEqual([...names].sort());
    for (const path of [...Object.values(CONFIG_ENV_TABLE), ...Object.keys(CONFIG_FLAG_TABLE)]) expect(() => configKey(path)).not.toThrow();
  });

  it('help text comes from the schema', () => {
    expect(CONFIG_ENV_VARS['WMS_PORT']).toBe(configHelp('port'));
    expect(configHelp('port')).toMatch(/port to listen on.*default 8080/);
    expect(configHelp('shutdownGraceSeconds')).toMatch(/default 10m/);
    expect(configHelp('sandboxMaxBytes')).toMatch(/default 100MiB/);
    expect(configHelp('databaseUrl')).toMatch(/default: PGlite/);
  });

  it('durations and sizes are shown as they are written', () => {
    expect([
      formatDuration(600),
      formatDuration(3600),
      formatDuration(30 * 86400),
      formatDuration(7 * 86400),
      formatDuration(90),
      formatDuration(0),
    ]).toEqual(['10m', '1h', '30d', '7d', '90s', '0']);
    expect([formatSize(100 * 1024 * 1024), formatSize(1024 ** 3), formatSize(1000)]).toEqual(['100MiB', '1GiB', '1000']);
    for (const s of [600, 3600, 86400 * 30, 90]) expect(parseDuration(formatDuration(s))).toBe(s);
  });
});

describe('sources: each value knows where it came from', () => {
  const file = { port: 9000, tokens: { userTtl: '7d' }, pilot: { localSlots: 2 } };

  it('defaults, file, env and flags, key by key', () => {
    const { config, origins } = resolveServiceConfigWithOrigins({
      file,
      fileName: '/etc/wms.json',
      env: { WMS_PORT: '9100', WMS_JOB_TOKEN_TTL: '2h', WMS_HOST: '' },
      flags: { agents: false },
    });
    expect(config).toMatchObject({ port: 9100, agents: false, host: '127.0.0.1' });
    expect(config.tokens).toMatchObject({ userTtlSeconds: 7 * 86400, jobTtlSeconds: 7200 });
    expect(config.pilot.localSlots).toBe(2);
    expect(origins['port']).toEqual({ source: 'env', name: 'WMS_PORT' });
    expect(origins['tokens.userTtlSeconds']).toEqual({ source: 'file', name: '/etc/wms.json' });
    expect(origins['tokens.jobTtlSeconds']).toEqual({ source: 'env', name: 'WMS_JOB_TOKEN_TTL' });
    expect(origins['pilot.localSlots']).toEqual({ source: 'file', name: '/etc/wms.json' });
    expect(origins['agents']).toEqual({ source: 'flag', name: '--no-agents' });
    expect(origins['host']).toEqual({ source: 'default' });
    expect(Object.keys(origins).sort()).toEqual(CONFIG_KEYS.map((k) => k.path).sort());
  });

  it('a flag wins over env and file, and says so', () => {
    const { config, origins } = resolveServiceConfigWithOrigins({ file, env: { WMS_PORT: '9100' }, flags: { port: 9200 } });
    expect(config.port).toBe(9200);
    expect(origins['port']).toEqual({ source: 'flag', name: '--port' });
  });

  it('a file record (pilot.commands) replaces the default whole; other objects merge key by key', () => {
    const c = resolveServiceConfig({
      file: {
        pilot: { commands: { default: ['register', 'job-agent'], slurm: ['job-agent'] } },
        agentSettings: { siteDirector: { pauseSeconds: 60 } },
      },
    });
    expect(c.pilot.commands).toEqual({ default: ['register', 'job-agent'], slurm: ['job-agent'] });
    expect(c.agentSettings.siteDirector).toEqual({ ...DEFAULT_SERVICE_CONFIG.agentSettings.siteDirector, pauseSeconds: 60 });
  });

  it("does not freeze the caller's file", () => {
    const f = { pilot: { commands: { default: ['register'] } } };
    resolveServiceConfig({ file: f });
    expect(Object.isFrozen(f.pilot.commands)).toBe(false);
  });
});

describe('secrets are masked wherever the config is shown', () => {
  const env = { WMS_DATABASE_URL: 'postgres://wms:hunter2@db.example:5432/wms', WMS_METRICS_TOKEN: 'scrape-secret' };

  it('the database password and the metrics token', () => {
    const { config, origins } = resolveServiceConfigWithOrigins({ env });
    const masked = maskedConfig(config);
    expect(masked.databaseUrl).toBe('postgres://wms:***@db.example:5432/wms');
    expect(masked.metricsToken).toBe('***');
    expect(config.metricsToken).toBe('scrape-secret');
    const text = configReport(config, origins);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('scrape-secret');
    expect(text).toMatch(/^databaseUrl\s+postgres:\/\/wms:\*\*\*@db\.example:5432\/wms\s+env WMS_DATABASE_URL$/m);
    expect(text).toMatch(/^metricsToken\s+\*\*\*\s+env WMS_METRICS_TOKEN$/m);
    expect(text).toMatch(/^shutdownGrace\s+10m\s+default$/m);
    expect(JSON.stringify(configEntries(config, origins))).not.toMatch(/hunter2|scrape-secret/);
  });

  it('URL forms', () => {
    expect(maskUrlPassword('postgres://u@h/db')).toBe('postgres://u@h/db');
    expect(maskUrlPassword('postgresql://u:p%40ss@h/db?sslmode=require')).toBe('postgresql://u:***@h/db?sslmode=require');
    expect(maskUrlPassword('postgres://h/db?user=u&password=pw&x=1')).toBe('postgres://h/db?user=u&password=***&x=1');
  });

  it('a bad database URL is named without its password', () => {
    expect(() => resolveServiceConfig({ env: { WMS_DATABASE_URL: 'mysql://u:hunter2@h/db' } })).toThrow(
      /^WMS_DATABASE_URL: "mysql:\/\/u:\*\*\*@h\/db" is not a postgres/,
    );
  });
});

describe('bad values: one clear line naming the source and the key path', () => {
  const message = (sources: Parameters<typeof resolveServiceConfig>[0]): string => {
    try {
      resolveServiceConfig(sources);
    } catch (e) {
      expect((e as { code: string }).code).toBe('WMS_CONFIG');
      return (e as Error).message;
    }
    throw new Error('no error');
  };

  it('in the file: the file name and the path of the key', () => {
    expect(message({ file: { agentSettings: { siteDirector: { pauseSecs: 1 } } }, fileName: 'wms.json' })).toBe(
      'wms.json: /agentSettings/siteDirector: unknown key(s) pauseSecs',
    );
    expect(message({ file: { logLevel: 'loud' }, fileName: 'wms.json' })).toBe(
      'wms.json: /logLevel: must be one of fatal, error, warn, info, debug, trace, silent',
    );
    expect(message({ file: { tokens: { jobTtl: true } }, fileName: 'wms.json' })).toBe(
      'wms.json: /tokens/jobTtl: must be integer or string',
    );
    expect(message({ file: { publicUrl: 'ftp://x' }, fileName: 'wms.json' })).toBe('wms.json: /publicUrl: must match pattern "^https?://"');
    expect(message({ file: { tokens: { maxTtl: 'forever' } }, fileName: 'wms.json' })).toBe(
      'wms.json: tokens.maxTtl: "forever" is not a duration (e.g. 30d, 12h, 3600)',
    );
    expect(message({ file: { requestBodyMaxBytes: 'big' }, fileName: 'wms.json' })).toMatch(
      /^wms\.json: requestBodyMaxBytes: "big" is not a size/,
    );
    expect(message({ file: { metricsToken: 's' }, fileName: 'wms.json' })).toBe('wms.json: /: unknown key(s) metricsToken');
    expect(message({ file: { pilot: { commands: { slurm: ['job-agent'] } } }, fileName: 'wms.json' })).toBe(
      'wms.json: pilot.commands: needs a "default" list',
    );
    expect(message({ file: { listDefaultLimit: 50, listMaxLimit: 10 }, fileName: 'wms.json' })).toMatch(
      /^wms\.json: listDefaultLimit: 50 is above listMaxLimit/,
    );
    expect(message({ file: { jobLimits: { minCpuTime: 10, maxCpuTime: 5 } } })).toMatch(/^jobLimits: minCpuTime is above maxCpuTime/);
  });

  it('in the environment: the variable', () => {
    expect(message({ env: { WMS_PORT: '70000' } })).toBe('WMS_PORT: above 65535');
    expect(message({ env: { WMS_DB_POOL_SIZE: 'many' } })).toBe('WMS_DB_POOL_SIZE: "many" is not an integer >= 1');
    expect(message({ env: { WMS_LOCAL_SITE: 'sometimes' } })).toBe('WMS_LOCAL_SITE: "sometimes" is not a boolean (1/0, true/false)');
    expect(message({ env: { WMS_SANDBOX_MAX_SIZE: 'huge' } })).toMatch(/^WMS_SANDBOX_MAX_SIZE: "huge" is not a size/);
    expect(message({ env: { WMS_TOKEN_TTL: '1y' } })).toMatch(/^WMS_TOKEN_TTL: "1y" is not a duration/);
    expect(message({ env: { WMS_PUBLIC_URL: 'pilot-home' } })).toBe('WMS_PUBLIC_URL: "pilot-home" must match pattern "^https?://"');
  });

  it('in the flags: the flag', () => {
    expect(message({ flags: { port: 70000 } })).toBe('--port: "70000" must be <= 65535');
    expect(message({ flags: { databaseUrl: 'sqlite:x' } })).toBe('--db: "sqlite:x" is not a postgres:// URL');
  });
});

describe("README's configuration table", () => {
  it('is the one generated from the schema', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const table = configTableIn(readme);
    expect(table, 'README.md lacks the <!-- config-table:start --> / <!-- config-table:end --> markers').not.toBeNull();
    expect(table, 'README.md: the configuration table differs from core/config-schema.ts; run `node scripts/config-table.mjs`').toBe(
      configTableMarkdown(),
    );
  });

  it('lists every key, variable and flag', () => {
    const table = configTableMarkdown();
    for (const key of CONFIG_KEYS) expect(table).toContain(`| \`${key.filePath ?? key.path}\` |`);
    for (const name of Object.keys(CONFIG_ENV_TABLE)) expect(table).toContain(`\`${name}\``);
    for (const flag of Object.values(CONFIG_FLAG_TABLE)) expect(table).toContain(`\`${flag}\``);
    expect(withConfigTable('a\n<!-- config-table:start -->\nold\n<!-- config-table:end -->\nb', 'new')).toBe(
      'a\n<!-- config-table:start -->\nnew\n<!-- config-table:end -->\nb',
    );
  });
});
