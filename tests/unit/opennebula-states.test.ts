/**
 * OpenNebula STATE/LCM_STATE → pilot states, the reap rule, and the driver reading a recorded
 * VM_POOL reply through undici's MockAgent (one pool call for many pilots; POWEROFF reaped).
 */
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createOpenNebulaComputingElement,
  pilotLauncher,
  quoteTemplateValue,
  templateVector,
} from '../../agents/computing-elements/opennebula.js';
import {
  lcmStateName,
  pilotStatusOfVm,
  vmReapReason,
  vmStateLabel,
  LCM_STATE_NAMES,
} from '../../agents/computing-elements/opennebula-states.js';

describe('pilotStatusOfVm', () => {
  const table: [number, number, string, RegExp][] = [
    [0, 0, 'Submitted', /VM INIT/],
    [1, 0, 'Waiting', /VM PENDING: waiting for the scheduler/],
    [2, 0, 'Waiting', /VM HOLD: held/],
    [10, 0, 'Waiting', /CLONING/],
    [11, 0, 'Aborted', /CLONING_FAILURE.*never started/],
    [3, 1, 'Waiting', /ACTIVE\/PROLOG: starting/],
    [3, 2, 'Waiting', /ACTIVE\/BOOT: starting/],
    [3, 3, 'Running', /^VM ACTIVE\/RUNNING$/],
    [3, 4, 'Running', /MIGRATE/],
    [3, 17, 'Running', /HOTPLUG/],
    [3, 69, 'Running', /BACKUP/],
    [3, 12, 'Running', /SHUTDOWN: shutting down/],
    [3, 11, 'Running', /EPILOG: shutting down/],
    [3, 16, 'Unknown', /ACTIVE\/UNKNOWN: its host is not monitored/],
    [3, 36, 'Aborted', /BOOT_FAILURE: the VM never booted/],
    [3, 39, 'Aborted', /PROLOG_FAILURE/],
    [3, 40, 'Failed', /ACTIVE\/EPILOG_FAILURE: the VM failed/],
    [3, 37, 'Failed', /BOOT_MIGRATE_FAILURE/],
    [3, 61, 'Failed', /PROLOG_MIGRATE_UNKNOWN_FAILURE/],
    [3, 13, 'Unknown', /LCM_13: unknown LCM_STATE/],
    [4, 0, 'Failed', /STOPPED: the guest is not running/],
    [5, 0, 'Failed', /SUSPENDED/],
    [9, 0, 'Failed', /UNDEPLOYED/],
    [8, 0, 'Done', /POWEROFF: the guest powered itself off/],
    [6, 0, 'Deleted', /DONE: terminated/],
    [7, 0, 'Unknown', /STATE_7: unknown STATE/],
  ];
  it.each(table)('STATE %i LCM %i → %s', (state, lcm, status, reason) => {
    const s = pilotStatusOfVm(state, lcm);
    expect(s.status).toBe(status);
    expect(s.reason).toMatch(reason);
  });

  it('maps every failure LCM state to Failed or Aborted and names the holes', () => {
    for (const [code, name] of Object.entries(LCM_STATE_NAMES)) {
      if (name.endsWith('_FAILURE')) expect(['Failed', 'Aborted']).toContain(pilotStatusOfVm(3, Number(code)).status);
    }
    expect(lcmStateName(58)).toBe('LCM_58');
    expect(vmStateLabel(3, 3)).toBe('ACTIVE/RUNNING');
    expect(vmStateLabel(8, 0)).toBe('POWEROFF');
  });
});

describe('vmReapReason', () => {
  const now = 1_800_000_000;
  const max = 3600;
  it('reaps powered-off, stopped and failed VMs, and VMs past the lifetime; never DONE', () => {
    expect(vmReapReason({ state: 8, lcmState: 0, startTime: now }, now, max)).toMatch(/POWEROFF/);
    expect(vmReapReason({ state: 4, lcmState: 0, startTime: now }, now, max)).toMatch(/not running/);
    expect(vmReapReason({ state: 3, lcmState: 40, startTime: now }, now, max)).toMatch(/EPILOG_FAILURE: failed/);
    expect(vmReapReason({ state: 11, lcmState: 0, startTime: now }, now, max)).toMatch(/failed/);
    expect(vmReapReason({ state: 3, lcmState: 3, startTime: now - max - 1 }, now, max)).toMatch(
      /older than the maximum lifetime \(3601 s > 3600 s\)/,
    );
    expect(vmReapReason({ state: 1, lcmState: 0, startTime: now - max - 1 }, now, max)).toMatch(/older/);
    expect(vmReapReason({ state: 3, lcmState: 3, startTime: now - 10 }, now, max)).toBeNull();
    expect(vmReapReason({ state: 6, lcmState: 0, startTime: now - 10 * max }, now, max)).toBeNull();
  });
});

describe('template values and the launcher', () => {
  it('quotes as the template parser reads: only \\" is an escape', () => {
    expect(quoteTemplateValue('a "b" c')).toBe('"a \\"b\\" c"');
    expect(quoteTemplateValue('C:\\dir\\x')).toBe('"C:\\dir\\x"');
    expect(() => quoteTemplateValue('ends with \\')).toThrow(/backslash/);
    expect(() => quoteTemplateValue('a\\"b')).toThrow(/backslash/);
    expect(templateVector('CONTEXT', { NETWORK: 'YES', X: 'y"z' })).toBe('CONTEXT = [\n  NETWORK = "YES",\n  X = "y\\"z" ]');
  });

  it('embeds the wrapper and starts it detached', () => {
    const l = pilotLauncher('abc123', 'echo hi\n', true);
    expect(l).toContain('export DIRAC_PILOT_STAMP=abc123');
    expect(l).toContain(Buffer.from('echo hi\n').toString('base64'));
    expect(l).toMatch(
      /setsid nohup bash -c 'bash \.\/wrapper\.sh; echo \$\? > exit-code; sync; poweroff' > pilot\.log 2>&1 < \/dev\/null &\nexit 0\n$/,
    );
    expect(pilotLauncher('abc123', 'x', false)).not.toContain('poweroff');
    expect(() => pilotLauncher('a b', 'x', false)).toThrow(/stamp/);
  });
});

describe('the driver on recorded replies (MockAgent)', () => {
  const ORIGIN = 'https://one.example.org:2633';
  let agent: MockAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  const vm = (id: number, state: number, lcm: number, stime: number) =>
    `<VM><ID>${id}</ID><UID>5</UID><GID>1</GID><UNAME><![CDATA[dirac]]></UNAME><GNAME><![CDATA[users]]></GNAME><NAME><![CDATA[wms-pilot-s${id}]]></NAME>` +
    `<LAST_POLL>0</LAST_POLL><STATE>${state}</STATE><LCM_STATE>${lcm}</LCM_STATE><PREV_STATE>${state}</PREV_STATE><PREV_LCM_STATE>${lcm}</PREV_LCM_STATE>` +
    `<RESCHED>0</RESCHED><STIME>${stime}</STIME><ETIME>0</ETIME><DEPLOY_ID>one-${id}</DEPLOY_ID><MONITORING/><TEMPLATE><CPU><![CDATA[1]]></CPU></TEMPLATE><HISTORY_RECORDS/></VM>`;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const success = (v: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n${v}\r\n<value><i4>0</i4></value>\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n`;

  it('asks the pool once for many pilots, maps each, and terminates the powered-off VM', async () => {
    const a = new MockAgent();
    agent = a;
    a.disableNetConnect();
    const bodies: string[] = [];
    const now = 1_800_000_000_000;
    const poolXml = `<VM_POOL>${vm(12, 3, 3, now / 1000 - 60)}${vm(11, 8, 0, now / 1000 - 600)}${vm(10, 1, 0, now / 1000 - 5)}</VM_POOL>`;
    const mock = a.get(ORIGIN);
    // undici may run a body matcher more than once per request: keep each distinct body once.
    const capture = (b: string) => (bodies.includes(b) || bodies.push(b), true);
    mock
      .intercept({ path: '/RPC2', method: 'POST', body: (b: string) => b.includes('one.vmpool.info') && capture(b) })
      .reply(200, success(`<value><string>${esc(poolXml)}</string></value>`));
    mock
      .intercept({ path: '/RPC2', method: 'POST', body: (b: string) => b.includes('one.vm.action') && capture(b) })
      .reply(200, success('<value><i4>11</i4></value>'));
    mock
      .intercept({ path: '/RPC2', method: 'POST', body: (b: string) => b.includes('one.vm.info') && capture(b) })
      .reply(200, success(`<value><string>${esc(vm(9, 6, 0, now / 1000 - 900))}</string></value>`));
    const ce = createOpenNebulaComputingElement({
      ce: 'one-ce',
      settings: { endpoint: `${ORIGIN}/RPC2`, user: 'dirac', password: { env: 'X' }, templateId: 3 },
      workDir: '/nonexistent',
      secret: async () => 'pw',
      dispatcher: a,
      now: () => now,
    });
    const refs = [9, 10, 11, 12].map((id) => `cloud://one-ce/${id}`);
    const st = await ce.status([...refs, 'cloud://other-ce/10', 'local://one-ce/1']);
    expect([...st.keys()].sort()).toEqual([...refs].sort());
    expect(st.get(refs[0]!)).toMatchObject({ status: 'Deleted' });
    expect(st.get(refs[1]!)).toMatchObject({ status: 'Waiting' });
    expect(st.get(refs[2]!)).toMatchObject({ status: 'Done', reason: expect.stringMatching(/POWEROFF.*; VM terminated$/) });
    expect(st.get(refs[3]!)).toMatchObject({ status: 'Running', reason: 'VM ACTIVE/RUNNING' });
    expect(bodies.filter((b) => b.includes('one.vmpool.info'))).toHaveLength(1);
    expect(bodies[0]).toContain(
      '<string>dirac:pw</string></value></param><param><value><int>-3</int></value></param><param><value><int>9</int></value></param><param><value><int>12</int></value></param><param><value><int>-1</int></value>',
    );
    expect(bodies.find((b) => b.includes('one.vm.action'))).toContain(
      '<string>terminate-hard</string></value></param><param><value><int>11</int>',
    );
    a.assertNoPendingInterceptors();
  });

  it("checks its settings when built, and a queue's template when it submits", async () => {
    const base = { ce: 'c', workDir: '/x', secret: async () => 'p' };
    expect(() =>
      createOpenNebulaComputingElement({ ...base, settings: { endpoint: 'one:2633', user: 'u', password: { env: 'P' }, templateId: 1 } }),
    ).toThrow(/endpoint must be an http\(s\) URL/);
    // The template may come from each queue: a queue without one (nor the CE) fails its submission.
    const noTemplate = createOpenNebulaComputingElement({
      ...base,
      settings: { endpoint: 'http://h:2633/RPC2', user: 'u', password: { env: 'P' } },
    });
    const queue = { site: 's', ce: 'c', queue: 'q', processors: 1, ramMb: 1, timeLimitSeconds: 60 };
    expect((await noTemplate.submit({ ...queue, settings: {} }, [{ stamp: 'a1', wrapper: 'true' }])).failed).toEqual([
      {
        stamp: 'a1',
        reason: expect.stringMatching(/^OpenNebula CE c: give exactly one of settings.templateId and settings.template .*\(queue q\)$/),
      },
    ]);
    expect(() =>
      createOpenNebulaComputingElement({
        ...base,
        settings: { endpoint: 'http://h:2633/RPC2', user: 'u', password: { env: 'P' }, templateId: 1, template: 'CPU=1' },
      }),
    ).toThrow(/exactly one of settings.templateId and settings.template/);
    expect(() =>
      createOpenNebulaComputingElement({
        ...base,
        settings: { endpoint: 'http://h:2633/RPC2', user: 'u', password: { env: 'P' }, template: 'CPU=1\nCONTEXT=[A=b]' },
      }),
    ).toThrow(/must not set NAME or CONTEXT/);
    expect(() =>
      createOpenNebulaComputingElement({
        ...base,
        settings: { endpoint: 'http://h:2633/RPC2', user: 'u', password: { env: 'P' }, templateId: 1, contextExtra: { START_SCRIPT: 'x' } },
      }),
    ).toThrow(/set by the driver/);
  });
});
