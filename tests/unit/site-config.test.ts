import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CE_TYPES, ceSettingsProblems, ceSettingsTableMarkdown, mergeCeSettings, siteRegistryProblems } from '../../core/site-config.js';

const dir = resolve(import.meta.dirname, '../../site-configs');

const one = (ce: Record<string, unknown>, queue: Record<string, unknown> = {}) => ({
  sites: [{ name: 'S.x', computingElements: [{ name: 'ce1', type: 'slurm', queues: [{ name: 'q', ...queue }], ...ce }] }],
});

describe('site registry documents', () => {
  it.each(readdirSync(dir).filter((f) => f.endsWith('.yaml')))('the example %s is valid', (file) => {
    expect(siteRegistryProblems(parse(readFileSync(join(dir, file), 'utf8')))).toEqual([]);
  });

  it('ships one example per CE type', () => {
    const types = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => (parse(readFileSync(join(dir, f), 'utf8')) as { sites: { computingElements: { type: string }[] }[] }).sites)
      .flatMap((s) => s.computingElements.map((c) => c.type));
    expect(new Set(types)).toEqual(new Set(['local', 'slurm', 'htcondor', 'opennebula']));
  });

  it('names the path of each schema problem', () => {
    const problems = siteRegistryProblems(one({ type: 'pbs' }, { ramMb: -1, colour: 'red' }));
    expect(problems.some((p) => p.startsWith('sites[0].computingElements[0].type:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('sites[0].computingElements[0].queues[0].ramMb:'))).toBe(true);
    expect(problems).toContain('sites[0].computingElements[0].queues[0]: unknown key(s) colour');
  });

  it('refuses a secret given as a value, anywhere in the settings', () => {
    expect(siteRegistryProblems(one({ settings: { host: 'login', user: 'u', password: 'hunter2' } }))).toEqual([
      'sites[0].computingElements[0].settings.password: a secret must be { env: NAME } or { file: PATH }, never the value itself',
    ]);
    expect(siteRegistryProblems(one({ settings: { ssh: { privateKey: '-----BEGIN' } } }))[0]).toMatch(
      /settings\.ssh\.privateKey: a secret must be/,
    );
    expect(
      siteRegistryProblems(one({ settings: { host: 'login', user: 'u', password: { env: 'P' }, privateKey: { file: '/t' } } })),
    ).toEqual([]);
  });

  it('refuses queue environment variables that hook into loaders and shells, with their path, even in a bad document', () => {
    expect(siteRegistryProblems(one({}, { environment: { NODE_OPTIONS: '--import=./x.mjs', OMP_NUM_THREADS: '4' } }))).toEqual([
      'sites[0].computingElements[0].queues[0].environment.NODE_OPTIONS: NODE_OPTIONS changes how programs load or start (the pilot, the dynamic linker, shells, interpreters); a queue may not set it',
    ]);
    for (const name of [
      'LD_PRELOAD',
      'LD_AUDIT',
      'BASH_ENV',
      'ENV',
      'BASH_FUNC_ls',
      'PS4',
      'PYTHONPATH',
      'PERL5OPT',
      'JAVA_TOOL_OPTIONS',
      'MALLOC_PERTURB_',
      'WMS_TOKEN',
    ]) {
      expect(siteRegistryProblems(one({}, { environment: { [name]: 'x' } })), name).toEqual([
        expect.stringContaining(`environment.${name}: ${name} changes`),
      ]);
    }
    // The settings detour (queue settings are stored beside the environment) and a document of the wrong shape.
    expect(siteRegistryProblems(one({}, { settings: { environment: { LD_PRELOAD: '/x.so' } } }))[0]).toMatch(
      /^sites\[0\]\.computingElements\[0\]\.queues\[0\]\.settings\.environment\.LD_PRELOAD: /,
    );
    expect(siteRegistryProblems(one({}, { ramMb: 'lots', environment: { LD_PRELOAD: '/x.so' } }))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/queues\[0\]\.environment\.LD_PRELOAD: /),
        expect.stringMatching(/queues\[0\]\.ramMb: /),
      ]),
    );
    expect(
      siteRegistryProblems(one({}, { environment: { PATH: '/cvmfs/x/bin:/usr/bin', X509_CERT_DIR: '/etc/grid-security/certificates' } })),
    ).toEqual([]);
  });

  it("refuses a queue's own keys given in its settings (they would skip their checks)", () => {
    expect(siteRegistryProblems(one({}, { settings: { workDirs: ['/a:/b'], account: 'x' } }))).toEqual([
      'sites[0].computingElements[0].queues[0].settings.workDirs: workDirs is a key of the queue itself (write it beside name, where it is checked), not a setting',
    ]);
    expect(siteRegistryProblems(one({}, { settings: { timeLimitSeconds: 1 } }))[0]).toMatch(
      /settings\.timeLimitSeconds: timeLimitSeconds is a key of the queue itself/,
    );
    expect(siteRegistryProblems(one({}, { settings: { account: 'x', sbatchArgs: ['--qos=long'] } }))).toEqual([]);
  });

  it('requires the settings a CE type cannot work without', () => {
    const doc = one({ type: 'opennebula', settings: { endpoint: 'https://x:2633/RPC2' } });
    expect(siteRegistryProblems(doc)).toEqual([
      'sites[0].computingElements[0].settings.user: required for an opennebula computing element',
      'sites[0].computingElements[0].settings.password: required for an opennebula computing element',
      "sites[0].computingElements[0].settings.templateId: give exactly one of templateId and template (in the CE's settings or the queue's)",
    ]);
  });

  it('finds duplicates and contradictory limits', () => {
    const doc = {
      sites: [
        {
          name: 'A',
          computingElements: [
            { name: 'ce', type: 'local', queues: [{ name: 'q' }, { name: 'q', maxWaitingPilots: 9, maxTotalPilots: 3 }] },
          ],
        },
        { name: 'A', computingElements: [{ name: 'ce', type: 'local', queues: [{ name: 'r', tags: ['x'], requiredTags: ['y'] }] }] },
      ],
    };
    expect(siteRegistryProblems(doc)).toEqual([
      'sites[0].computingElements[0].queues[1].name: queue q appears twice in ce',
      'sites[0].computingElements[0].queues[1].maxWaitingPilots: 9 is above maxTotalPilots 3',
      'sites[1].name: site A is already defined at sites[0]',
      'sites[1].computingElements[0].name: computing element ce is already defined at sites[0].computingElements[0]',
      'sites[1].computingElements[0].queues[0].requiredTags: y must also be in tags',
    ]);
  });

  it('checks the backend settings of each CE type by its schema, one line per problem with its path', () => {
    const ce = (type: string, settings: Record<string, unknown>, queues: Record<string, unknown>[] = [{ name: 'q' }]) => ({
      sites: [{ name: 'S.x', computingElements: [{ name: 'ce1', type, settings, queues }] }],
    });
    const at = 'sites[0].computingElements[0]';
    expect(siteRegistryProblems(ce('slurm', { host: 'login', user: 'u', port: '22', sbatchArgs: ['--x', 3], hots: 'y' }))).toEqual([
      `${at}.settings.port: must be integer`,
      `${at}.settings.sbatchArgs[1]: must be string`,
      expect.stringMatching(
        /^sites\[0\]\.computingElements\[0\]\.settings\.hots: not a setting of a slurm computing element \(known: host, user, /,
      ),
    ]);
    expect(siteRegistryProblems(ce('slurm', { user: 'u' }))).toEqual([`${at}.settings.user: needs host (the SSH login node)`]);
    expect(siteRegistryProblems(ce('htcondor', { remote: 'yes', tokenKind: 'jwt', extraSubmitLines: ['queue 3'] }))).toEqual([
      `${at}.settings.remote: must be boolean`,
      `${at}.settings.tokenKind: must be one of scitoken, idtoken`,
      `${at}.settings.extraSubmitLines: one line each, and no queue statement ("queue 3")`,
    ]);
    // tokenKind names a token but is none: the secret check knows the type's keys.
    expect(siteRegistryProblems(ce('htcondor', { remote: true, tokenKind: 'scitoken', token: { env: 'T' } }))).toEqual([]);
    expect(siteRegistryProblems(ce('local', { slots: 4 }))).toEqual([
      `${at}.settings.slots: not a setting of a local computing element (it has none)`,
    ]);
    // A queue inherits its CE's settings and overrides the per-queue ones; the connection is the CE's.
    const one = { endpoint: 'https://one:2633/RPC2', user: 'u', password: { env: 'P' } };
    expect(siteRegistryProblems(ce('opennebula', one, [{ name: 'a', settings: { templateId: 1 } }]))).toEqual([]);
    expect(siteRegistryProblems(ce('opennebula', { ...one, templateId: 1 }, [{ name: 'a', settings: { template: 'CPU=1' } }]))).toEqual([]);
    expect(
      siteRegistryProblems(
        ce('opennebula', one, [
          { name: 'a', settings: { templateId: 1, endpoint: 'https://other/RPC2' } },
          { name: 'b', settings: { contextExtra: { START_SCRIPT: 'x' } } },
        ]),
      ),
    ).toEqual([
      `${at}.queues[0].settings.endpoint: a setting of the computing element (shared by its queues), not of a queue`,
      `${at}.queues[1].settings.templateId: give exactly one of templateId and template (in the CE's settings or the queue's)`,
      `${at}.queues[1].settings.contextExtra: START_SCRIPT is set by the driver`,
    ]);
  });

  it("answers the problems of one queue over its CE, ignoring the queue's own keys (explain reads it)", () => {
    const one = { endpoint: 'https://one:2633/RPC2', user: 'u', password: { env: 'P' } };
    expect(
      ceSettingsProblems('opennebula', one, { templateId: 4, timeLimitSeconds: 60, environment: { A: 'b' }, workDirs: ['/s'] }),
    ).toEqual([]);
    expect(ceSettingsProblems('opennebula', one)).toEqual([
      "settings.templateId: give exactly one of templateId and template (in the CE's settings or the queue's)",
    ]);
    expect(ceSettingsProblems('opennebula', { ...one, password: 'pw' }, { templateId: -1 })).toEqual([
      'settings.password: a secret must be { env: NAME } or { file: PATH }, never the value itself',
      'queue settings.templateId: must be >= 0',
    ]);
    expect(ceSettingsProblems('pbs', {})).toEqual(['type: pbs is not a CE type (local, slurm, htcondor, opennebula)']);
    expect(ceSettingsProblems('local', undefined, undefined)).toEqual([]);
  });

  it("merges a queue's settings over its CE's, alternatives replacing each other", () => {
    expect(mergeCeSettings('opennebula', { template: 'CPU=1', user: 'u' }, { templateId: 3 })).toEqual({ user: 'u', templateId: 3 });
    expect(mergeCeSettings('slurm', { account: 'a', host: 'h' }, { account: 'b' })).toEqual({ account: 'b', host: 'h' });
  });

  it('documents the settings of every CE type in site-configs/README.md, as the schemas say', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const type of CE_TYPES) expect(readme, `the ${type} table`).toContain(`### ${type}\n\n${ceSettingsTableMarkdown(type)}\n`);
  });
});
