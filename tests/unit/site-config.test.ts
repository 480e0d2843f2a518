import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { siteRegistryProblems } from '../../core/site-config.js';

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
    expect(siteRegistryProblems(one({ settings: { password: 'hunter2' } }))).toEqual([
      'sites[0].computingElements[0].settings.password: a secret must be { env: NAME } or { file: PATH }, never the value itself',
    ]);
    expect(siteRegistryProblems(one({ settings: { ssh: { privateKey: '-----BEGIN' } } }))[0]).toMatch(
      /settings\.ssh\.privateKey: a secret must be/,
    );
    expect(siteRegistryProblems(one({ settings: { password: { env: 'P' }, token: { file: '/t' } } }))).toEqual([]);
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
    expect(siteRegistryProblems(one({}, { settings: { workDirs: ['/a:/b'], templateId: 7 } }))).toEqual([
      'sites[0].computingElements[0].queues[0].settings.workDirs: workDirs is a key of the queue itself (write it beside name, where it is checked), not a setting',
    ]);
    expect(siteRegistryProblems(one({}, { settings: { timeLimitSeconds: 1 } }))[0]).toMatch(
      /settings\.timeLimitSeconds: timeLimitSeconds is a key of the queue itself/,
    );
    expect(siteRegistryProblems(one({}, { settings: { templateId: 7, minDiskMb: 100 } }))).toEqual([]);
  });

  it('requires the settings a CE type cannot work without', () => {
    const doc = one({ type: 'opennebula', settings: { endpoint: 'https://x:2633/RPC2' } });
    expect(siteRegistryProblems(doc)).toEqual([
      'sites[0].computingElements[0].settings.user: required for a opennebula computing element',
      'sites[0].computingElements[0].settings.password: required for a opennebula computing element',
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
});
