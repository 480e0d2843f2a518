import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SERVICE_CONFIG,
  parseDuration,
  parseSize,
  resolveServiceConfig,
} from '../../core/config.js';
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
