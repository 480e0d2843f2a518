/**
 * The OpenNebula computing element: one VM per pilot through oned's XML-RPC API
 * (one.vm.allocate, one.vm.info, one.vm.action), references `cloud://<ce>/<vm id>`.
 *
 * CE settings (site config, `settings:` of a CE of type `opennebula`):
 * - `endpoint` (required): the XML-RPC URL, `https://one.example.org:2633/RPC2` (oned itself speaks
 *   plain HTTP on 2633; TLS comes from a reverse proxy).
 * - `user` (required) and `password` (required, a SecretRef `{ env }` or `{ file }`): the session
 *   string of every call is `"user:password"` (a login token works in place of the password).
 * - `templateId` (a VM template id: `one.template.instantiate` with an extra template carrying
 *   only CONTEXT; note that it replaces the stored template's whole CONTEXT, so repeat what you
 *   need of it in `contextExtra`), or `template` (a full VM template in `ATTR = value` syntax for
 *   `one.vm.allocate`, without NAME and CONTEXT: the driver adds both). Exactly one of the two.
 * - `vmNamePrefix` (default `wms-pilot-`): VMs are named `<prefix><stamp>`; the cleanup sweep and
 *   the VM count of `maxVms` consider only VMs so named.
 * - `maxLifetimeSeconds` (default 172800, two days): older VMs are terminated.
 * - `contextExtra` (optional): more CONTEXT entries, `{ NETWORK: "YES", SSH_PUBLIC_KEY: "$USER[SSH_PUBLIC_KEY]" }`.
 * - `maxVms` (optional): `availableSlots` is `maxVms` minus this user's prefix-named VMs not DONE
 *   (POWEROFF ones count: they hold their resources); without it `availableSlots` is null.
 * - `powerOffAtEnd` (default true): the VM powers itself off when the pilot ends, so the CE sees
 *   POWEROFF (Done) and frees the VM instead of waiting for the lifetime limit, as DIRAC's cloud CE does.
 * - `timeoutSeconds` (default 30): the deadline of each XML-RPC call.
 *
 * A queue's settings may give its own `templateId` or `template` (either replaces both of the
 * CE's), `contextExtra` and `powerOffAtEnd`, checked when its pilots are submitted.
 *
 * Submit: the VM's CONTEXT carries `START_SCRIPT_BASE64`, a short bash launcher with the wrapper
 * inside it (base64), and `DIRAC_PILOT_STAMP`. OpenNebula runs the start script as root under
 * `set -e` and waits for it (1.8), so the launcher unpacks the wrapper to
 * `${TMPDIR:-/var/tmp}/wms-pilot-<stamp>/`, starts it with `setsid nohup` (output to `pilot.log`
 * there) and returns at once. A call that timed out or lost its connection may still have created
 * the VM: the driver then looks the VM up by name before reporting the pilot failed.
 *
 * Status: one `one.vmpool.info` for all the references (the user's own VMs, id range of the
 * references, all states but DONE), then `one.vm.info` for those not in it (DONE, or gone: a VM
 * that no longer exists is reported Deleted). States map as in opennebula-states.ts.
 *
 * Reaping happens in status(): a VM asked about that is POWEROFF, STOPPED, SUSPENDED, UNDEPLOYED,
 * failed, or older than `maxLifetimeSeconds` is terminated (`terminate-hard`) there and then, so a
 * VM past its lifetime is reported Failed at once. cleanup() terminates the VMs of the finished
 * pilots it is given that are not DONE yet, and sweeps the user's prefix-named VMs for the same
 * reap reasons (VMs whose references were lost). A terminate refused because the VM is in a
 * transitional state (ACTION, LOCKED) is retried on the next status/cancel/cleanup call.
 */
import type { Dispatcher } from 'undici';
import { mergeCeSettings } from '../../core/site-config.js';
import { pilotStatusOfVm, vmReapReason, vmStateLabel, VM_STATE } from './opennebula-states.js';
import type { CeQueueTarget, ComputingElement, DriverOptions, PilotBackendStatus, PilotSubmission, SubmittedPilot } from './types.js';
import { children, ONE_ERROR_CODES, parseXml, textAt, XmlRpcClient, XmlRpcError, type XmlElement } from './xmlrpc.js';

export interface OpenNebulaSettings {
  endpoint: string;
  user: string;
  password: unknown;
  templateId?: number;
  template?: string;
  vmNamePrefix: string;
  maxLifetimeSeconds: number;
  contextExtra: Record<string, string>;
  maxVms?: number;
  powerOffAtEnd: boolean;
  timeoutSeconds: number;
}

export const OPENNEBULA_DEFAULTS = {
  vmNamePrefix: 'wms-pilot-',
  maxLifetimeSeconds: 2 * 24 * 3600,
  powerOffAtEnd: true,
  timeoutSeconds: 30,
} as const;

/** Pool filter: the calling user's own VMs. */
const POOL_FILTER_OWN = -3;
/** Pool state filter: any state but DONE. */
const POOL_ANY_BUT_DONE = -1;
const RESERVED_CONTEXT = new Set(['START_SCRIPT', 'START_SCRIPT_BASE64', 'DIRAC_PILOT_STAMP']);

/**
 * Validates and completes a CE's settings; throws naming the CE and the setting. With
 * `templateLater`, the template may be missing (each queue may give its own, checked at submit).
 */
export function parseOpenNebulaSettings(ce: string, s: Readonly<Record<string, unknown>>, templateLater = false): OpenNebulaSettings {
  const bad = (what: string) => new Error(`OpenNebula CE ${ce}: ${what}`);
  const endpoint = s['endpoint'];
  if (typeof endpoint !== 'string' || !/^https?:\/\/[^/]+/.test(endpoint))
    throw bad('settings.endpoint must be an http(s) URL such as https://one.example.org:2633/RPC2');
  const user = s['user'];
  if (typeof user !== 'string' || user === '' || user.includes(':')) throw bad('settings.user must be a user name (no colon)');
  if (s['password'] === undefined) throw bad('settings.password is required ({ env: NAME } or { file: PATH })');
  const templateId = s['templateId'];
  const template = s['template'];
  const neither = templateId === undefined && template === undefined;
  if ((templateId === undefined) === (template === undefined) && !(neither && templateLater))
    throw bad(`give exactly one of settings.templateId and settings.template (of the CE, or of each queue)`);
  if (templateId !== undefined && !(Number.isInteger(templateId) && (templateId as number) >= 0))
    throw bad('settings.templateId must be a template id (integer >= 0)');
  if (template !== undefined) {
    if (typeof template !== 'string' || template.trim() === '') throw bad('settings.template must be a VM template string');
    if (/^\s*(NAME|CONTEXT)\s*=/im.test(template))
      throw bad('settings.template must not set NAME or CONTEXT (the driver sets them; use settings.contextExtra)');
  }
  const prefix = s['vmNamePrefix'] ?? OPENNEBULA_DEFAULTS.vmNamePrefix;
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(prefix))
    throw bad('settings.vmNamePrefix must be letters, digits, _ . - (1 to 64)');
  const num = (key: string, dflt: number | undefined, min: number): number | undefined => {
    const v = s[key] ?? dflt;
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw bad(`settings.${key} must be a number >= ${min}`);
    return v;
  };
  const contextExtra: Record<string, string> = {};
  const extra = s['contextExtra'];
  if (extra !== undefined) {
    if (!extra || typeof extra !== 'object' || Array.isArray(extra)) throw bad('settings.contextExtra must be a map of NAME: value');
    for (const [k, v] of Object.entries(extra)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw bad(`settings.contextExtra: bad attribute name ${JSON.stringify(k)}`);
      if (RESERVED_CONTEXT.has(k.toUpperCase())) throw bad(`settings.contextExtra: ${k} is set by the driver`);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
        throw bad(`settings.contextExtra.${k} must be a string, number or boolean`);
      contextExtra[k] = typeof v === 'boolean' ? (v ? 'YES' : 'NO') : String(v);
      quoteTemplateValue(contextExtra[k]!, `settings.contextExtra.${k}`); // refuses what cannot be quoted
    }
  }
  const powerOff = s['powerOffAtEnd'] ?? OPENNEBULA_DEFAULTS.powerOffAtEnd;
  if (typeof powerOff !== 'boolean') throw bad('settings.powerOffAtEnd must be true or false');
  const maxVms = num('maxVms', undefined, 0);
  return {
    endpoint,
    user,
    password: s['password'],
    ...(templateId !== undefined ? { templateId: templateId as number } : {}),
    ...(template !== undefined ? { template: template as string } : {}),
    vmNamePrefix: prefix,
    maxLifetimeSeconds: num('maxLifetimeSeconds', OPENNEBULA_DEFAULTS.maxLifetimeSeconds, 1)!,
    contextExtra,
    ...(maxVms !== undefined ? { maxVms: Math.floor(maxVms) } : {}),
    powerOffAtEnd: powerOff,
    timeoutSeconds: num('timeoutSeconds', OPENNEBULA_DEFAULTS.timeoutSeconds, 0.001)!,
  };
}

/**
 * A double-quoted template value: the parser undoes only `\"`, backslashes are
 * otherwise literal. So `"` becomes `\"`, a backslash stays as it is, and a value where a backslash
 * would come right before a quote (or at the end) cannot be written and is refused.
 */
export function quoteTemplateValue(v: string, what = 'template value'): string {
  if (/\\("|$)/.test(v))
    throw new Error(`${what}: a backslash before a quote or at the end cannot be written in an OpenNebula template; base64 it`);
  return `"${v.replace(/"/g, '\\"')}"`;
}

/** `NAME = [ A = "x", B = "y" ]` */
export function templateVector(name: string, entries: Readonly<Record<string, string>>): string {
  const body = Object.entries(entries)
    .map(([k, v]) => `  ${k} = ${quoteTemplateValue(v, `${name}/${k}`)}`)
    .join(',\n');
  return `${name} = [\n${body} ]`;
}

/**
 * The START_SCRIPT: unpacks the wrapper and starts it detached (`setsid nohup`, output to
 * pilot.log), then returns; with `powerOff` the VM powers off when the wrapper ends.
 */
export function pilotLauncher(stamp: string, wrapper: string, powerOff: boolean): string {
  if (!/^[A-Za-z0-9_-]+$/.test(stamp)) throw new Error(`bad pilot stamp ${JSON.stringify(stamp)}`);
  const b64 = Buffer.from(wrapper, 'utf8')
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n');
  const after = powerOff ? '; sync; poweroff' : '';
  return [
    '#!/bin/bash',
    '# pilot-wms launcher: OpenNebula waits for its start script, so the pilot runs detached.',
    `export DIRAC_PILOT_STAMP=${stamp}`,
    `d="\${TMPDIR:-/var/tmp}/wms-pilot-${stamp}"`,
    'mkdir -p "$d"',
    'cd "$d"',
    "base64 -d > wrapper.sh <<'WMS_PILOT_WRAPPER'",
    b64 + 'WMS_PILOT_WRAPPER',
    'chmod 700 wrapper.sh',
    `setsid nohup bash -c 'bash ./wrapper.sh; echo $? > exit-code${after}' > pilot.log 2>&1 < /dev/null &`,
    'exit 0',
    '',
  ].join('\n');
}

interface PoolVm {
  id: number;
  name: string;
  state: number;
  lcmState: number;
  startTime: number;
}

function vmOf(el: XmlElement): PoolVm {
  const int = (path: string) => {
    const v = Number.parseInt(textAt(el, path) ?? '', 10);
    return Number.isNaN(v) ? -1 : v;
  };
  return { id: int('ID'), name: textAt(el, 'NAME') ?? '', state: int('STATE'), lcmState: int('LCM_STATE'), startTime: int('STIME') };
}

function parseDoc(value: unknown, root: string, what: string): XmlElement {
  if (typeof value !== 'string') throw new Error(`${what}: expected an XML document, got ${typeof value}`);
  const doc = parseXml(value);
  if (doc.name !== root) throw new Error(`${what}: expected <${root}>, got <${doc.name}>`);
  return doc;
}

const isOne = (e: unknown, code: number) => e instanceof XmlRpcError && e.kind === 'one' && e.details.oneCode === code;
const isTransient = (e: unknown) =>
  e instanceof XmlRpcError &&
  e.kind === 'one' &&
  (e.details.oneCode === ONE_ERROR_CODES.ACTION || e.details.oneCode === ONE_ERROR_CODES.LOCKED);

export type OpenNebulaDriverOptions = DriverOptions & {
  /** undici dispatcher for the XML-RPC calls (tests pass a MockAgent). */
  dispatcher?: Dispatcher;
  /** Clock in ms (tests age VMs); Date.now by default. */
  now?: () => number;
};

/**
 * Builds the OpenNebula CE; settings are checked now, the password is read at the first call.
 * A queue's settings (templateId or template, contextExtra, powerOffAtEnd) override the CE's
 * for its VMs (core/site-config.ts mergeCeSettings).
 */
export function createOpenNebulaComputingElement(o: OpenNebulaDriverOptions): ComputingElement {
  const s = parseOpenNebulaSettings(o.ce, o.settings, true);
  const client = new XmlRpcClient({
    endpoint: s.endpoint,
    timeoutMs: Math.round(s.timeoutSeconds * 1000),
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
  });
  const now = o.now ?? Date.now;
  const refRe = /^cloud:\/\/([^/]+)\/(\d+)$/;
  /** VMs whose terminate was refused for their transitional state: retried later. */
  const pendingTerminations = new Set<number>();
  let sessionPromise: Promise<string> | null = null;

  const session = () => {
    sessionPromise ??= o.secret(s.password, `OpenNebula CE ${o.ce} settings.password`).then((p) => `${s.user}:${p}`);
    sessionPromise.catch(() => (sessionPromise = null)); // a fixed secret is read again next time
    return sessionPromise;
  };
  const call = async (method: string, params: Parameters<XmlRpcClient['callOne']>[2]) => client.callOne(method, await session(), params);
  const idOf = (ref: string): number | null => {
    const m = refRe.exec(ref);
    return m && m[1] === o.ce ? Number(m[2]) : null;
  };

  async function pool(start: number, end: number): Promise<PoolVm[]> {
    const xml = await call('one.vmpool.info', [POOL_FILTER_OWN, start, end, POOL_ANY_BUT_DONE]);
    return children(parseDoc(xml, 'VM_POOL', 'one.vmpool.info'), 'VM').map(vmOf);
  }

  async function vmInfo(id: number): Promise<PoolVm | null> {
    try {
      return vmOf(parseDoc(await call('one.vm.info', [id]), 'VM', 'one.vm.info'));
    } catch (e) {
      if (isOne(e, ONE_ERROR_CODES.NO_EXISTS)) return null;
      throw e;
    }
  }

  /** terminate-hard; true when the VM is gone or going, false when refused for now (retried later). */
  async function terminate(id: number): Promise<boolean> {
    try {
      await call('one.vm.action', ['terminate-hard', id]);
      pendingTerminations.delete(id);
      return true;
    } catch (e) {
      if (isOne(e, ONE_ERROR_CODES.NO_EXISTS)) {
        pendingTerminations.delete(id);
        return true;
      }
      if (isTransient(e)) {
        pendingTerminations.add(id);
        return false;
      }
      throw e;
    }
  }

  async function retryPending(): Promise<void> {
    for (const id of [...pendingTerminations]) await terminate(id).catch(() => undefined);
  }

  async function findByName(name: string): Promise<number | null> {
    const vms = await pool(-1, -1);
    return vms.find((v) => v.name === name)?.id ?? null;
  }

  function buildContext(p: PilotSubmission, q: OpenNebulaSettings): Record<string, string> {
    return {
      ...q.contextExtra,
      DIRAC_PILOT_STAMP: p.stamp,
      START_SCRIPT_BASE64: Buffer.from(pilotLauncher(p.stamp, p.wrapper, q.powerOffAtEnd), 'utf8').toString('base64'),
    };
  }

  /** Starts one VM with the settings of its queue `q`. */
  async function create(p: PilotSubmission, q: OpenNebulaSettings): Promise<number> {
    const name = `${s.vmNamePrefix}${p.stamp}`;
    const context = templateVector('CONTEXT', buildContext(p, q));
    let id: unknown;
    if (q.templateId !== undefined) {
      id = await call('one.template.instantiate', [q.templateId, name, false, context]);
    } else {
      id = await call('one.vm.allocate', [`${q.template!.trimEnd()}\nNAME = ${quoteTemplateValue(name)}\n${context}\n`, false]);
    }
    if (typeof id !== 'number') throw new Error(`OpenNebula answered ${JSON.stringify(String(id))} instead of a VM id`);
    return id;
  }

  return {
    type: 'opennebula',

    async submit(queue: CeQueueTarget, pilots: readonly PilotSubmission[]) {
      const submitted: SubmittedPilot[] = [];
      const failed: { stamp: string; reason: string }[] = [];
      let stopReason: string | null = null;
      let q = s;
      try {
        q = parseOpenNebulaSettings(o.ce, mergeCeSettings('opennebula', o.settings, queue.settings));
      } catch (e) {
        stopReason = `${(e as Error).message} (queue ${queue.queue})`; // names the CE already
      }
      if (pilots.length > 0 && !stopReason) await session().catch((e: Error) => (stopReason = e.message)); // names the CE already
      for (const p of pilots) {
        if (stopReason) {
          failed.push({ stamp: p.stamp, reason: stopReason });
          continue;
        }
        try {
          const id = await create(p, q);
          submitted.push({ stamp: p.stamp, reference: `cloud://${o.ce}/${id}` });
        } catch (e) {
          // A lost reply may hide a created VM: look for it by name before calling it failed.
          if (e instanceof XmlRpcError && (e.kind === 'timeout' || e.kind === 'transport' || (e.kind === 'http' && e.retryable))) {
            const id = await findByName(`${s.vmNamePrefix}${p.stamp}`).catch(() => null);
            if (id !== null) {
              submitted.push({ stamp: p.stamp, reference: `cloud://${o.ce}/${id}` });
              continue;
            }
          }
          const reason = `OpenNebula CE ${o.ce}: ${(e as Error).message}`;
          failed.push({ stamp: p.stamp, reason });
          // Whatever refuses this pilot refuses the next ones: say so for each without more calls.
          const hopeless =
            e instanceof XmlRpcError &&
            (e.kind === 'transport' ||
              e.kind === 'timeout' ||
              isOne(e, ONE_ERROR_CODES.AUTHENTICATION) ||
              isOne(e, ONE_ERROR_CODES.AUTHORIZATION));
          if (hopeless) stopReason = reason;
        }
      }
      return { submitted, failed };
    },

    async status(references: readonly string[]) {
      const out = new Map<string, PilotBackendStatus>();
      const byId = new Map<number, string[]>();
      for (const ref of references) {
        const id = idOf(ref);
        if (id === null) continue;
        byId.set(id, [...(byId.get(id) ?? []), ref]);
      }
      if (byId.size === 0) return out;
      await retryPending();
      const ids = [...byId.keys()];
      const found = new Map<number, PoolVm>();
      for (const vm of await pool(Math.min(...ids), Math.max(...ids))) if (byId.has(vm.id)) found.set(vm.id, vm);
      const missing = ids.filter((id) => !found.has(id));
      const nowS = Math.floor(now() / 1000);
      for (const id of ids) {
        let st: PilotBackendStatus;
        const vm = found.get(id) ?? (missing.includes(id) ? await vmInfo(id).catch((e: Error) => e) : null);
        if (vm instanceof Error) {
          st = { status: 'Unknown', reason: vm.message };
        } else if (vm === null) {
          st = { status: 'Deleted', reason: `VM ${id} does not exist (any more)` };
        } else {
          st = pilotStatusOfVm(vm.state, vm.lcmState);
          const reap = vmReapReason(vm, nowS, s.maxLifetimeSeconds);
          if (reap) {
            // Past its lifetime, not otherwise finished: the pilot is stopped by us, so Failed.
            const byLifetime = vmReapReason(vm, nowS, Number.POSITIVE_INFINITY) === null;
            let what: string;
            try {
              what = (await terminate(id)) ? 'VM terminated' : 'terminate refused for now, will retry';
            } catch (e) {
              what = `terminate failed: ${(e as Error).message}`;
            }
            st = byLifetime
              ? { status: 'Failed', reason: `${reap}, was ${vmStateLabel(vm.state, vm.lcmState)}; ${what}` }
              : { ...st, reason: `${st.reason}; ${what}` };
          }
        }
        for (const ref of byId.get(id)!) out.set(ref, st);
      }
      return out;
    },

    async cancel(references: readonly string[]) {
      const errors: string[] = [];
      for (const ref of references) {
        const id = idOf(ref);
        if (id === null) continue;
        await terminate(id).catch((e: Error) => errors.push(e.message));
      }
      if (errors.length > 0) throw new Error(`OpenNebula CE ${o.ce}: cancel failed for ${errors.length} VM(s): ${errors.join('; ')}`);
    },

    async cleanup(references: readonly string[]) {
      await retryPending();
      const errors: string[] = [];
      for (const ref of references) {
        const id = idOf(ref);
        if (id === null) continue;
        try {
          const vm = await vmInfo(id);
          if (vm && vm.state !== VM_STATE.DONE) await terminate(id);
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      try {
        const nowS = Math.floor(now() / 1000);
        for (const vm of await pool(-1, -1)) {
          if (!vm.name.startsWith(s.vmNamePrefix)) continue;
          if (vmReapReason(vm, nowS, s.maxLifetimeSeconds)) await terminate(vm.id).catch((e: Error) => errors.push(e.message));
        }
      } catch (e) {
        errors.push((e as Error).message);
      }
      if (errors.length > 0) throw new Error(`OpenNebula CE ${o.ce}: cleanup incomplete: ${errors.join('; ')}`);
    },

    async availableSlots() {
      if (s.maxVms === undefined) return null;
      const vms = (await pool(-1, -1)).filter((v) => v.name.startsWith(s.vmNamePrefix) && v.state !== VM_STATE.DONE);
      return Math.max(0, s.maxVms - vms.length);
    },

    async close() {
      // Nothing runs here: the VMs live in OpenNebula; the dispatcher belongs to the caller.
    },
  };
}
