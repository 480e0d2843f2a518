/**
 * A simulator of OpenNebula 6.x's XML-RPC API (oned), for tests: OpenNebula cannot be installed
 * on these machines. It is NOT OpenNebula; it reproduces the parts a pilot CE uses, with the
 * envelopes and codes OpenNebula documents (see README.md beside it for the list and the
 * differences). A "VM" boots by running its CONTEXT START_SCRIPT_BASE64 (or START_SCRIPT) as a
 * local bash process, as one-context would inside a guest.
 *
 * VM life here:
 *   allocate/instantiate -> PENDING (or HOLD) -> ACTIVE/PROLOG -> ACTIVE/BOOT -> ACTIVE/RUNNING,
 *   and at RUNNING the start script runs (synchronously, `bash -e`, cwd = a context dir, every
 *   CONTEXT entry exported, TMPDIR = the VM's own tmp dir). When the processes it started end,
 *   the VM stays ACTIVE/RUNNING, as a real VM whose pilot ended does, until someone terminates it.
 *   If a process of the VM runs `poweroff` (a fake one is first on PATH), the VM's processes are
 *   killed and it becomes POWEROFF (8), as a guest shutting itself down does.
 *   terminate / terminate-hard: kill every process of the VM (found by a marker in their
 *   environment) and set DONE (6); refused with ACTION in PROLOG/BOOT and other transitional states.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { children, parseXml, text, type XmlElement } from '../../../agents/computing-elements/xmlrpc.js';

// ----------------------------------------------------------------------------------------------
// Codes (OpenNebula's error codes and VM states)

export const ONE_ERR = {
  AUTHENTICATION: 0x0100,
  AUTHORIZATION: 0x0200,
  NO_EXISTS: 0x0400,
  ACTION: 0x0800,
  XML_RPC_API: 0x1000,
  INTERNAL: 0x2000,
  ALLOCATE: 0x4000,
  LOCKED: 0x8000,
} as const;

export const STATE = { INIT: 0, PENDING: 1, HOLD: 2, ACTIVE: 3, STOPPED: 4, SUSPENDED: 5, DONE: 6, POWEROFF: 8, UNDEPLOYED: 9 } as const;
export const LCM = {
  LCM_INIT: 0,
  PROLOG: 1,
  BOOT: 2,
  RUNNING: 3,
  UNKNOWN: 16,
  BOOT_FAILURE: 36,
  PROLOG_FAILURE: 39,
  EPILOG_FAILURE: 40,
} as const;
const FAILURE_LCM = new Set([36, 37, 38, 39, 40, 41, 42, 44, 46, 47, 48, 49, 50, 61]);

/**
 * Standard XML-RPC fault codes used by the xmlrpc-c library that oned is built on, as far as we
 * know them (not among the documented codes): -501 type error, -506 no such method.
 */
export const FAULT = { TYPE_ERROR: -501, NO_SUCH_METHOD: -506 } as const;

// ----------------------------------------------------------------------------------------------
// Template syntax: NAME = value, NAME = [ A = "x", B = y ], # comments,
// double-quoted values where only \" is an escape.

export type TemplateValue = string | Record<string, string>;
export type Template = [name: string, value: TemplateValue][];

export function parseTemplate(src: string): Template {
  let i = 0;
  const out: Template = [];
  const fail = (what: string) => new Error(`syntax error, ${what} at offset ${i}`);
  const ws = (newlines: boolean) => {
    for (;;) {
      const c = src[i];
      if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) i++;
      else if (newlines && c === '#') while (i < src.length && src[i] !== '\n') i++;
      else break;
    }
  };
  const name = () => {
    const m = /^[A-Za-z0-9_]+/.exec(src.slice(i));
    if (!m) throw fail('expected an attribute name');
    i += m[0].length;
    return m[0].toUpperCase();
  };
  const scalar = () => {
    if (src[i] === '"') {
      i++;
      let v = '';
      for (;;) {
        if (i >= src.length) throw fail('unterminated quoted value');
        if (src[i] === '\\' && src[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (src[i] === '"') {
          i++;
          return v;
        } else v += src[i++];
      }
    }
    const m = /^[^\s=,[\]#"]+/.exec(src.slice(i));
    if (!m) throw fail('expected a value');
    i += m[0].length;
    return m[0];
  };
  for (;;) {
    ws(true);
    if (i >= src.length) return out;
    const n = name();
    ws(false);
    if (src[i] !== '=') throw fail(`expected '=' after ${n}`);
    i++;
    ws(false);
    if (src[i] === '[') {
      i++;
      const vec: Record<string, string> = {};
      for (;;) {
        ws(true);
        if (src[i] === ']') {
          i++;
          break;
        }
        const k = name();
        ws(true);
        if (src[i] !== '=') throw fail(`expected '=' after ${n}/${k}`);
        i++;
        ws(true);
        vec[k] = scalar();
        ws(true);
        if (src[i] === ',') i++;
        else if (src[i] !== ']') throw fail(`expected ',' or ']' in ${n}`);
      }
      out.push([n, vec]);
    } else {
      out.push([n, scalar()]);
    }
    ws(false);
    if (i < src.length && src[i] !== '\n') throw fail('expected the end of the line');
  }
}

/** Stored template merged with an extra one: an attribute of the extra replaces all stored ones of that name. */
function mergeTemplates(base: Template, extra: Template): Template {
  const replaced = new Set(extra.map(([n]) => n));
  return [...base.filter(([n]) => !replaced.has(n)), ...extra];
}

// ----------------------------------------------------------------------------------------------
// XML-RPC in and out

type Param = { type: string; value: unknown };

class Fault extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
class OneFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly objectId = -1,
  ) {
    super(message);
  }
}

function readParam(v: XmlElement): Param {
  const typed = children(v);
  if (typed.length === 0) return { type: 'string', value: text(v) };
  const t = typed[0]!;
  switch (t.name) {
    case 'string':
      return { type: 'string', value: text(t) };
    case 'int':
    case 'i4':
      return { type: 'int', value: Number.parseInt(text(t), 10) };
    case 'i8':
      return { type: 'i8', value: Number.parseInt(text(t), 10) };
    case 'boolean':
      return { type: 'boolean', value: text(t).trim() === '1' };
    case 'double':
      return { type: 'double', value: Number(text(t)) };
    default:
      return { type: t.name, value: null };
  }
}

const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
const cdata = (s: string) => `<![CDATA[${s.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;

function envelope(inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n${inner}\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n`;
}
/** Success: [true, value, 0] (3 values). */
function successReply(valueXml: string): string {
  return envelope(`<value><boolean>1</boolean></value>\r\n${valueXml}\r\n<value><i4>0</i4></value>`);
}
/** Failure: [false, message, code, object id, replication index as i8] (5 values). */
function failureReply(f: OneFailure): string {
  return envelope(
    `<value><boolean>0</boolean></value>\r\n<value><string>${esc(f.message)}</string></value>\r\n<value><i4>${f.code}</i4></value>\r\n<value><i4>${f.objectId}</i4></value>\r\n<value><i8>0</i8></value>`,
  );
}
function faultReply(code: number, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<fault><value><struct>\r\n<member><name>faultCode</name>\r\n<value><i4>${code}</i4></value></member>\r\n<member><name>faultString</name>\r\n<value><string>${esc(message)}</string></value></member>\r\n</struct></value></fault>\r\n</methodResponse>\r\n`;
}

// ----------------------------------------------------------------------------------------------
// The simulator

export interface SimulatedVm {
  id: number;
  name: string;
  state: number;
  lcmState: number;
  prevState: number;
  prevLcmState: number;
  stime: number;
  etime: number;
  template: Template;
  context: Record<string, string>;
  /** The VM's own directory on this machine (context, tmp, bin). */
  dir: string;
  /** The start script's exit code once it returned (null while running or not booted). */
  startScriptExit: number | null;
  timers: NodeJS.Timeout[];
}

export type InjectedFailure =
  /** An XML-RPC <fault> reply. */
  | { kind: 'fault'; code?: number; message?: string }
  /** HTTP 500 with a text body; with `afterDispatch` the call is carried out first (a lost reply). */
  | { kind: 'http500'; afterDispatch?: boolean }
  /** OpenNebula's failure array with this code. */
  | { kind: 'one'; code: number; message?: string }
  /** No reply at all until the simulator closes (for timeouts). */
  | { kind: 'hang' };

export interface OneSimulatorOptions {
  /** Root for the VMs' directories. */
  workDir: string;
  user?: string;
  password?: string;
  /** Milliseconds spent in PENDING, PROLOG and BOOT (defaults 50 each). */
  timing?: { pendingMs?: number; prologMs?: number; bootMs?: number };
  /** API_LIST_ORDER: pool replies newest first by default, as oned does. */
  listOrder?: 'DESC' | 'ASC';
  /** First VM id (default 0). */
  firstVmId?: number;
  /** VMs not DONE allowed at once (a quota): allocate beyond it fails with ALLOCATE. */
  quotaVms?: number;
  /** Stored VM templates for one.template.instantiate, by id. */
  templates?: Record<number, string>;
  /** Bash used to run start scripts (default `bash`). */
  bash?: string;
}

export class OneSimulator {
  readonly vms = new Map<number, SimulatedVm>();
  /** Every call received, in order: method and params (session excluded). */
  readonly calls: { method: string; params: unknown[] }[] = [];
  private server: Server | null = null;
  private nextId: number;
  private readonly tag = randomBytes(4).toString('hex');
  private readonly injected: { method: string | undefined; failure: InjectedFailure; times: number }[] = [];
  private readonly hanging = new Set<ServerResponse>();
  private readonly scripts = new Set<ChildProcess>();
  private poller: NodeJS.Timeout | null = null;
  private readonly templates = new Map<number, string>();
  url = '';

  constructor(private readonly o: OneSimulatorOptions) {
    this.nextId = o.firstVmId ?? 0;
    for (const [id, t] of Object.entries(o.templates ?? {})) this.templates.set(Number(id), t);
  }

  get session(): string {
    return `${this.o.user ?? 'oneadmin'}:${this.o.password ?? 'opennebula'}`;
  }

  async start(): Promise<string> {
    await mkdir(this.o.workDir, { recursive: true });
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/RPC2`;
    this.poller = setInterval(() => this.watchPoweroffs(), 100);
    this.poller.unref();
    return this.url;
  }

  /** Kills every VM's processes and stops listening. */
  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    for (const vm of this.vms.values()) {
      vm.timers.forEach(clearTimeout);
      this.killVmProcesses(vm);
    }
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }

  /** The next `times` calls (of `method`, or any) fail as told. */
  failNext(failure: InjectedFailure, opts: { method?: string; times?: number } = {}): void {
    this.injected.push({ method: opts.method, failure, times: opts.times ?? 1 });
  }

  /** Forces a VM into a state (e.g. ACTIVE/EPILOG_FAILURE); a state where the guest is not running kills its processes. */
  setVmState(id: number, state: number, lcmState = 0): void {
    const vm = this.vms.get(id);
    if (!vm) throw new Error(`no VM ${id}`);
    vm.timers.forEach(clearTimeout);
    vm.timers = [];
    if (!(state === STATE.ACTIVE && lcmState === LCM.RUNNING)) this.killVmProcesses(vm);
    this.move(vm, state, lcmState);
    if (state === STATE.DONE) vm.etime = nowS();
  }

  /** Pretends the VM started `seconds` earlier. */
  age(id: number, seconds: number): void {
    const vm = this.vms.get(id);
    if (!vm) throw new Error(`no VM ${id}`);
    vm.stime -= seconds;
  }

  /** PIDs of the VM's live processes. */
  vmProcesses(id: number): number[] {
    return this.pidsOf(`${this.tag}-${id}`);
  }

  // ------------------------------------------------------------------ HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, xml: string, type = 'text/xml') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    };
    if (req.method !== 'POST' || req.url !== '/RPC2') return send(404, 'Not Found', 'text/plain');

    let method: string;
    let params: Param[];
    try {
      const call = parseXml(body);
      if (call.name !== 'methodCall') throw new Error('not a methodCall');
      method = text(children(call, 'methodName')[0] ?? { name: '', attributes: {}, children: [] }).trim();
      const ps = children(call, 'params')[0];
      params = ps ? children(ps, 'param').map((p) => readParam(children(p, 'value')[0]!)) : [];
    } catch (e) {
      return send(200, faultReply(-503, `Call XML not a proper XML-RPC call. ${(e as Error).message}`));
    }
    this.calls.push({ method, params: params.slice(1).map((p) => p.value) });

    const inj = this.injected.findIndex((f) => f.method === undefined || f.method === method);
    if (inj >= 0) {
      const f = this.injected[inj]!;
      if (--f.times <= 0) this.injected.splice(inj, 1);
      const failure = f.failure;
      if (failure.kind === 'hang') {
        this.hanging.add(res);
        return;
      }
      if (failure.kind === 'http500') {
        if (failure.afterDispatch) {
          try {
            this.dispatch(method, params);
          } catch {
            // the reply is lost either way
          }
        }
        return send(500, 'Internal Server Error', 'text/plain');
      }
      if (failure.kind === 'fault') return send(200, faultReply(failure.code ?? -500, failure.message ?? 'injected fault'));
      return send(200, failureReply(new OneFailure(failure.code, failure.message ?? `[${method}] injected failure.`)));
    }

    try {
      const value = this.dispatch(method, params);
      send(200, successReply(value));
    } catch (e) {
      if (e instanceof Fault) send(200, faultReply(e.code, e.message));
      else if (e instanceof OneFailure) send(200, failureReply(e));
      else send(200, failureReply(new OneFailure(ONE_ERR.INTERNAL, `[${method}] ${(e as Error).message}`)));
    }
  }

  private dispatch(method: string, params: Param[]): string {
    const handlers: Record<string, (p: Args) => string> = {
      'one.system.version': () => `<value><string>6.10.0</string></value>`,
      'one.vm.allocate': (p) => this.allocate(method, p),
      'one.template.instantiate': (p) => this.instantiate(method, p),
      'one.vm.info': (p) => `<value><string>${esc(this.vmXml(this.get(method, p.int(1)), true))}</string></value>`,
      'one.vm.action': (p) => this.action(method, p),
      'one.vmpool.info': (p) => this.pool(method, p, false),
      'one.vmpool.infoextended': (p) => this.pool(method, p, true),
    };
    const h = handlers[method];
    if (!h) throw new Fault(FAULT.NO_SUCH_METHOD, `Unknown method: ${method}`);
    const args = new Args(method, params);
    const session = args.str(0);
    if (session !== this.session)
      throw new OneFailure(ONE_ERR.AUTHENTICATION, `[${method}] User couldn't be authenticated, aborting call.`);
    return h(args);
  }

  private get(method: string, id: number): SimulatedVm {
    const vm = this.vms.get(id);
    if (!vm) throw new OneFailure(ONE_ERR.NO_EXISTS, `[${method}] Error getting virtual machine [${id}].`, id);
    return vm;
  }

  // ------------------------------------------------------------------ methods

  private allocate(method: string, p: Args): string {
    const tpl = this.parse(method, p.str(1));
    const hold = p.optBool(2) ?? false;
    return `<value><i4>${this.create(method, tpl, undefined, hold)}</i4></value>`;
  }

  private instantiate(method: string, p: Args): string {
    const tid = p.int(1);
    const name = p.str(2);
    const hold = p.optBool(3) ?? false;
    const extra = p.optStr(4) ?? '';
    p.optBool(5);
    const stored = this.templates.get(tid);
    if (stored === undefined) throw new OneFailure(ONE_ERR.NO_EXISTS, `[${method}] Error getting template [${tid}].`, tid);
    const tpl = mergeTemplates(this.parse(method, stored), this.parse(method, extra));
    return `<value><i4>${this.create(method, tpl, name || undefined, hold, tid)}</i4></value>`;
  }

  private parse(method: string, src: string): Template {
    try {
      return parseTemplate(src);
    } catch (e) {
      throw new OneFailure(ONE_ERR.ALLOCATE, `[${method}] Error parsing template: ${(e as Error).message}`);
    }
  }

  private create(method: string, tpl: Template, name: string | undefined, hold: boolean, templateId?: number): number {
    const alive = [...this.vms.values()].filter((v) => v.state !== STATE.DONE).length;
    if (this.o.quotaVms !== undefined && alive >= this.o.quotaVms) {
      throw new OneFailure(ONE_ERR.ALLOCATE, `[${method}] User [0] : limit of ${this.o.quotaVms} reached for VMS quota in user [0].`);
    }
    const id = this.nextId++;
    const ctxEntry = tpl.find(([n]) => n === 'CONTEXT')?.[1];
    const context = typeof ctxEntry === 'object' ? ctxEntry : {};
    const nameEntry = tpl.find(([n]) => n === 'NAME')?.[1];
    const vm: SimulatedVm = {
      id,
      name: name ?? (typeof nameEntry === 'string' ? nameEntry : `one-${id}`),
      state: STATE.INIT,
      lcmState: LCM.LCM_INIT,
      prevState: STATE.INIT,
      prevLcmState: LCM.LCM_INIT,
      stime: nowS(),
      etime: 0,
      template: [
        ...tpl.filter(([n]) => n !== 'NAME'),
        ...(templateId !== undefined ? ([['TEMPLATE_ID', String(templateId)]] as Template) : []),
      ],
      context,
      dir: join(this.o.workDir, `vm-${id}`),
      startScriptExit: null,
      timers: [],
    };
    this.vms.set(id, vm);
    this.move(vm, hold ? STATE.HOLD : STATE.PENDING, LCM.LCM_INIT);
    if (!hold) this.schedule(vm);
    return id;
  }

  private schedule(vm: SimulatedVm): void {
    const t = { pendingMs: 50, prologMs: 50, bootMs: 50, ...this.o.timing };
    vm.timers.push(
      setTimeout(() => this.move(vm, STATE.ACTIVE, LCM.PROLOG), t.pendingMs),
      setTimeout(() => this.move(vm, STATE.ACTIVE, LCM.BOOT), t.pendingMs + t.prologMs),
      setTimeout(() => void this.boot(vm), t.pendingMs + t.prologMs + t.bootMs),
    );
  }

  private action(method: string, p: Args): string {
    const action = p.str(1);
    const vm = this.get(method, p.int(2));
    const wrongState = () =>
      new OneFailure(
        ONE_ERR.ACTION,
        `[${method}] Error performing action "${action}": This action is not available for state ${vm.state}/${vm.lcmState}`,
        vm.id,
      );
    const killAnd = (state: number) => {
      vm.timers.forEach(clearTimeout);
      vm.timers = [];
      this.killVmProcesses(vm);
      this.move(vm, state, LCM.LCM_INIT);
      if (state === STATE.DONE) vm.etime = nowS();
    };
    switch (action) {
      case 'terminate':
      case 'terminate-hard': {
        if (vm.state === STATE.DONE) break; // idempotent
        if (vm.state === STATE.ACTIVE && !(vm.lcmState === LCM.RUNNING || vm.lcmState === LCM.UNKNOWN || FAILURE_LCM.has(vm.lcmState)))
          throw wrongState();
        killAnd(STATE.DONE);
        break;
      }
      case 'poweroff':
      case 'poweroff-hard':
        if (!(vm.state === STATE.ACTIVE && vm.lcmState === LCM.RUNNING)) throw wrongState();
        killAnd(STATE.POWEROFF);
        break;
      case 'hold':
        if (vm.state !== STATE.PENDING) throw wrongState();
        vm.timers.forEach(clearTimeout);
        vm.timers = [];
        this.move(vm, STATE.HOLD, LCM.LCM_INIT);
        break;
      case 'release':
        if (vm.state !== STATE.HOLD) throw wrongState();
        this.move(vm, STATE.PENDING, LCM.LCM_INIT);
        this.schedule(vm);
        break;
      default:
        throw new OneFailure(ONE_ERR.ACTION, `[${method}] Action "${action}" is not supported.`, vm.id);
    }
    return `<value><i4>${vm.id}</i4></value>`;
  }

  private pool(method: string, p: Args, extended: boolean): string {
    const filter = p.int(1);
    const start = p.int(2);
    const end = p.int(3);
    const state = p.int(4);
    const json = p.optStr(5);
    if (state < -2 || state > 11) throw new OneFailure(ONE_ERR.XML_RPC_API, `[${method}] Incorrect filter_flag for state, must be -2..11.`);
    if (filter < -4) throw new OneFailure(ONE_ERR.XML_RPC_API, `[${method}] Incorrect filter_flag, must be >= -4.`);
    if (json) throw new OneFailure(ONE_ERR.INTERNAL, `[${method}] JSON query filters need a database with JSON support.`);
    let vms = [...this.vms.values()].sort((a, b) => a.id - b.id);
    if (state === -1) vms = vms.filter((v) => v.state !== STATE.DONE);
    else if (state >= 0) vms = vms.filter((v) => v.state === state);
    if (filter >= 0 && filter !== 0) vms = []; // every VM belongs to uid 0 here
    if (end < -1) {
      if ((this.o.listOrder ?? 'DESC') === 'DESC') vms.reverse();
      vms = vms.slice(Math.max(0, start), Math.max(0, start) - end);
    } else {
      vms = vms.filter((v) => (start < 0 || v.id >= start) && (end < 0 || v.id <= end));
      if ((this.o.listOrder ?? 'DESC') === 'DESC') vms.reverse();
    }
    const xml = `<VM_POOL>${vms.map((v) => this.vmXml(v, extended)).join('')}</VM_POOL>`;
    return `<value><string>${esc(xml)}</string></value>`;
  }

  // ------------------------------------------------------------------ VM documents

  private vmXml(vm: SimulatedVm, full: boolean): string {
    const tplXml = (t: Template, keep: (n: string) => boolean) =>
      t
        .filter(([n]) => keep(n))
        .map(([n, v]) =>
          typeof v === 'string'
            ? `<${n}>${cdata(v)}</${n}>`
            : `<${n}>${Object.entries(v)
                .map(([k, x]) => `<${k}>${cdata(x)}</${k}>`)
                .join('')}</${n}>`,
        )
        .join('');
    const system = new Set(['CPU', 'VCPU', 'MEMORY', 'DISK', 'NIC', 'CONTEXT', 'TEMPLATE_ID', 'OS', 'GRAPHICS']);
    const template = full
      ? tplXml(vm.template, (n) => system.has(n))
      : tplXml(vm.template, (n) => n === 'CPU' || n === 'MEMORY' || n === 'TEMPLATE_ID');
    const user = full ? tplXml(vm.template, (n) => !system.has(n)) : '';
    return (
      `<VM><ID>${vm.id}</ID><UID>0</UID><GID>0</GID><UNAME>${cdata(this.o.user ?? 'oneadmin')}</UNAME><GNAME>oneadmin</GNAME>` +
      `<NAME>${cdata(vm.name)}</NAME><PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>` +
      `<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>` +
      `<LAST_POLL>${nowS()}</LAST_POLL><STATE>${vm.state}</STATE><LCM_STATE>${vm.lcmState}</LCM_STATE>` +
      `<PREV_STATE>${vm.prevState}</PREV_STATE><PREV_LCM_STATE>${vm.prevLcmState}</PREV_LCM_STATE><RESCHED>0</RESCHED>` +
      `<STIME>${vm.stime}</STIME><ETIME>${vm.etime}</ETIME><DEPLOY_ID>${vm.state === STATE.ACTIVE ? `one-${vm.id}` : ''}</DEPLOY_ID>` +
      `<MONITORING/><TEMPLATE>${template}<VMID>${cdata(String(vm.id))}</VMID></TEMPLATE>` +
      `<USER_TEMPLATE>${user}</USER_TEMPLATE><HISTORY_RECORDS/></VM>`
    );
  }

  // ------------------------------------------------------------------ the "guest"

  private move(vm: SimulatedVm, state: number, lcm: number): void {
    if (vm.state === STATE.DONE && state !== STATE.DONE) return; // a late timer
    vm.prevState = vm.state;
    vm.prevLcmState = vm.lcmState;
    vm.state = state;
    vm.lcmState = lcm;
  }

  private async boot(vm: SimulatedVm): Promise<void> {
    if (vm.state !== STATE.ACTIVE || vm.lcmState !== LCM.BOOT) return;
    this.move(vm, STATE.ACTIVE, LCM.RUNNING);
    const ctx = join(vm.dir, 'context');
    const bin = join(vm.dir, 'bin');
    const tmp = join(vm.dir, 'tmp');
    await Promise.all([ctx, bin, tmp].map((d) => mkdir(d, { recursive: true })));
    await writeFile(join(bin, 'poweroff'), `#!/bin/sh\n: > "${join(vm.dir, 'poweroff-requested')}"\nsleep 3600\n`, { mode: 0o755 });
    const script =
      vm.context['START_SCRIPT_BASE64'] !== undefined
        ? Buffer.from(vm.context['START_SCRIPT_BASE64'], 'base64').toString('utf8')
        : vm.context['START_SCRIPT'];
    if (script === undefined) return;
    const file = join(ctx, 'start-script');
    await writeFile(file, script, { mode: 0o700 });
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(vm.context)) if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) env[k] = v;
    Object.assign(env, {
      PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      TMPDIR: tmp,
      VMID: String(vm.id),
      ONE_SIM_VM: `${this.tag}-${vm.id}`,
    });
    const child = spawn(this.o.bash ?? 'bash', ['-e', file], { cwd: ctx, env, stdio: 'ignore' });
    this.scripts.add(child);
    child.on('error', () => (vm.startScriptExit = 127));
    child.on('exit', (code) => {
      vm.startScriptExit = code ?? 128;
      this.scripts.delete(child);
      void rm(file, { force: true });
    });
  }

  private watchPoweroffs(): void {
    for (const vm of this.vms.values()) {
      if (vm.state === STATE.ACTIVE && vm.lcmState === LCM.RUNNING && existsSync(join(vm.dir, 'poweroff-requested'))) {
        this.killVmProcesses(vm);
        this.move(vm, STATE.POWEROFF, LCM.LCM_INIT);
      }
    }
  }

  private pidsOf(marker: string): number[] {
    const needle = `ONE_SIM_VM=${marker}\0`;
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (readFileSync(`/proc/${name}/environ`, 'latin1').includes(needle)) out.push(Number(name));
      } catch {
        // gone, or not ours
      }
    }
    return out;
  }

  /**
   * Kills everything the VM runs, as a power-off does. Passes until none is left: a process
   * forked between the listing and the kill (under load, a shell's child) escapes one pass.
   */
  private killVmProcesses(vm: SimulatedVm): void {
    for (let pass = 0; pass < 10; pass++) {
      const pids = this.pidsOf(`${this.tag}-${vm.id}`);
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Typed access to a call's params; a wrong or missing type is the xmlrpc-c type fault, as oned's typed accessors give. */
class Args {
  constructor(
    private readonly method: string,
    private readonly params: Param[],
  ) {}
  private at(i: number, type: string, optional: boolean): unknown {
    const p = this.params[i];
    if (!p) {
      if (optional) return undefined;
      throw new Fault(FAULT.TYPE_ERROR, `${this.method}: not enough parameters (param ${i} missing)`);
    }
    if (p.type !== type) throw new Fault(FAULT.TYPE_ERROR, `Type mismatch: param ${i} of ${this.method} is ${p.type}, expected ${type}`);
    return p.value;
  }
  str(i: number): string {
    return this.at(i, 'string', false) as string;
  }
  optStr(i: number): string | undefined {
    return this.at(i, 'string', true) as string | undefined;
  }
  int(i: number): number {
    return this.at(i, 'int', false) as number;
  }
  optBool(i: number): boolean | undefined {
    return this.at(i, 'boolean', true) as boolean | undefined;
  }
}

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}
