import { describe, expect, it } from 'vitest';
import { humanDuration, idRanges, shortTime, table } from '../../cli/output.js';
import { formatError, CliError, UsageError, exitCodeOf } from '../../cli/errors.js';
import { resolveClientConfig, tokenExpiresAt } from '../../cli/client-config.js';

describe('table', () => {
  it('aligns columns and prints - for missing values', () => {
    expect(
      table(
        ['ID', 'STATUS', 'SITE'],
        [
          [1, 'Waiting', null],
          [12345, 'Done', 'LCG.X'],
        ],
      ),
    ).toBe(['ID     STATUS   SITE', '1      Waiting  -', '12345  Done     LCG.X'].join('\n'));
  });
  it('times and id ranges', () => {
    expect(shortTime('2026-11-22T10:00:00.123Z')).toBe('2026-11-22 10:00:00Z');
    expect(shortTime('2026-11-22T10:00:00Z')).toBe('2026-11-22 10:00:00Z');
    expect(shortTime(null)).toBe('-');
    expect(idRanges([1, 2, 3, 5, 7, 8])).toBe('1-3 5 7 8');
  });
});

describe('formatError', () => {
  it('one line, then JDL problems as file:line:column', () => {
    const e = new CliError('missing ; at line 2, column 5', [{ message: 'missing ;', line: 2, column: 5 }], ['job.jdl']);
    expect(formatError(e)).toEqual(['wms: missing ; at line 2, column 5', '  job.jdl:2:5: missing ;']);
  });
  it('list submissions: "JDL #k" names the k-th file', () => {
    const e = new CliError('x', [{ message: 'JDL #2: CPUTime 5 is out of range', line: 3, column: 13 }], ['a.jdl', 'b.jdl']);
    expect(formatError(e)[1]).toBe('  b.jdl:3:13: CPUTime 5 is out of range');
  });
  it('validation problems by path; usage errors exit 2 with a hint', () => {
    expect(formatError(new CliError('bad', [{ message: 'is required', path: 'body/site' }]))[1]).toBe('  body/site: is required');
    expect(formatError(new UsageError('unknown command "x"'))).toEqual(['wms: unknown command "x"', 'Run "wms --help" for usage.']);
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new CliError('x'))).toBe(1);
    expect(exitCodeOf(new Error('x'))).toBe(1);
  });
});

describe('resolveClientConfig', () => {
  const files = (m: Record<string, string>) => (p: string) => m[p] ?? null;
  it('defaults, then config file, then env', () => {
    expect(resolveClientConfig({}, '/home/u', '/w', files({}))).toMatchObject({ url: 'http://127.0.0.1:8080', token: null });
    const cfg = { '/home/u/.config/pilot-wms/config.json': '{"url":"http://wms:9000/","token":"T1"}' };
    expect(resolveClientConfig({}, '/home/u', '/w', files(cfg))).toMatchObject({ url: 'http://wms:9000', token: 'T1' });
    expect(resolveClientConfig({ WMS_URL: 'http://x:1', WMS_TOKEN: 'T2' }, '/home/u', '/w', files(cfg))).toMatchObject({
      url: 'http://x:1',
      token: 'T2',
      tokenSource: 'WMS_TOKEN',
    });
  });
  it('falls back to <data-dir>/admin.token', () => {
    expect(resolveClientConfig({}, '/h', '/w', files({ '/w/var/admin.token': 'ADMIN\n' }))).toMatchObject({
      token: 'ADMIN',
      tokenSource: '/w/var/admin.token',
    });
    expect(resolveClientConfig({ WMS_DATA_DIR: '/d' }, '/h', '/w', files({ '/d/admin.token': 'A2' })).token).toBe('A2');
  });
  it('XDG_CONFIG_HOME and bad files', () => {
    expect(resolveClientConfig({ XDG_CONFIG_HOME: '/x' }, '/h', '/w', files({ '/x/pilot-wms/config.json': '{"token":"X"}' })).token).toBe(
      'X',
    );
    expect(() => resolveClientConfig({}, '/h', '/w', files({ '/h/.config/pilot-wms/config.json': 'nope' }))).toThrow(/config.json/);
    expect(() => resolveClientConfig({ WMS_URL: 'not a url' }, '/h', '/w', files({}))).toThrow(/not a URL/);
  });
});

describe('durations and token lifetimes for people', () => {
  it('humanDuration: tenths under 10 s, then seconds, minutes, hours, days', () => {
    expect([0.04, 0.3, 9.5, 9.96].map(humanDuration)).toEqual(['0 s', '0.3 s', '9.5 s', '10 s']);
    expect([0, 45, 119, 120, 3599, 7199, 7200, 172_800, 259_199, 259_200, 2_592_000, -5].map(humanDuration)).toEqual([
      '0 s',
      '45 s',
      '119 s',
      '2 min',
      '60 min',
      '120 min',
      '2 h',
      '48 h',
      '72 h',
      '3 d',
      '30 d',
      '0 s',
    ]);
  });

  it("tokenExpiresAt reads a JWT's exp claim, and nothing from what is not one", () => {
    const jwt = (payload: object) => `eyJhbGciOiJFZERTQSJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
    expect(tokenExpiresAt(jwt({ sub: 'a', exp: 1_800_000_000 }))?.toISOString()).toBe('2027-01-15T08:00:00.000Z');
    expect(tokenExpiresAt(jwt({ sub: 'a' }))).toBeNull();
    expect(tokenExpiresAt(jwt({ exp: 'soon' }))).toBeNull();
    expect(tokenExpiresAt('not-a-jwt')).toBeNull();
    expect(tokenExpiresAt('a.%%%.b')).toBeNull();
    expect(tokenExpiresAt(null)).toBeNull();
  });
});

describe('--local: times in the zone of the machine', () => {
  it('UTC with Z by default; with --local, the local time and its offset', async () => {
    const { printTimesLocally } = await import('../../cli/output.js');
    const { localTime } = await import('../../core/time-format.js');
    try {
      expect(shortTime('2026-11-22T10:00:00.123Z')).toBe('2026-11-22 10:00:00Z');
      printTimesLocally(true);
      expect(shortTime('2026-11-22T10:00:00.123Z')).toBe(localTime('2026-11-22T10:00:00.123Z'));
      expect(localTime('2026-11-22T10:00:00.123Z')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d$/);
      expect(shortTime(null)).toBe('-');
    } finally {
      printTimesLocally(false);
    }
  });
});
