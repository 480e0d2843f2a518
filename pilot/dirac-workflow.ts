/**
 * DIRAC workflows (the `jobDescription.xml` that DIRAC's job API writes with `workflow.toXML()`)
 * read and run as DIRAC's `dirac-jobexec` runs them, for the one module user jobs use: `Script`,
 * which `Job.setExecutable()` puts in every step. Run by the `dirac-jobexec` stand-in
 * (dirac-jobexec.ts) inside the payload's sandbox, as the payload: it can do nothing the payload
 * could not do itself.
 *
 * Reading. A small XML reader that knows elements, attributes, text, CDATA, comments and the five
 * predefined entities (and `&#N;`): a DOCTYPE, an entity declaration or any other entity is
 * refused, so nothing is ever expanded; sizes and depth are bounded. Values are text: DIRAC
 * `eval()`s the values of parameters whose type is not a string kind; here they are never used.
 * Every element DIRAC's WorkflowReader knows is accepted; any other is an error.
 *
 * What a step does (DIRAC's Workflow/Modules/Script.py and Core/Workflow/{Workflow,Step}.py):
 * - its `executable`, `arguments` (when blank: the workflow's `arguments`, which `-p
 *   arguments=...` sets) and `applicationLog` (else `logFile`, else `applicationLog.txt`);
 * - the command: `./<basename>` when a file of the executable's base name is in the working
 *   directory (made executable when it is not), `python3 <executable>` for a `.py`, else the
 *   executable as written (looked up in PATH), followed by the arguments; split into words as
 *   Python's `shlex.split` does (quotes and backslashes, no shell: no variables, globs, pipes);
 * - its output goes to the step's log file, `<<<<<<<<<< exe Standard Output >>>>>>>>>>` then
 *   the text (and the same for standard error when there is any), written when the step ends;
 * - a non-zero exit fails the step; the next steps still run (DIRAC's Script module does not
 *   look at the workflow's status), and the workflow fails with the status of the last step that
 *   failed: `dirac-jobexec` exits with it (or 1 when it is 0 modulo 256, or the step failed
 *   without a status).
 *
 * Deliberate differences from DIRAC: the steps' output is also passed through to this program's
 * standard output and error as it comes (DIRAC shows it in the job's std.out only at VERBOSE),
 * so the job's std.out shows what the steps printed; a program that cannot be started fails its
 * step with 127 (DIRAC: 1000, seen as exit code 232); a workflow holding anything else than
 * Script steps is refused before any step runs.
 */
import { spawn } from 'node:child_process';
import { access, chmod, constants as fsConstants, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { splitWords } from './shell-words.js';

/** Refused inputs and unsupported workflows: the message is for the user. */
export class WorkflowError extends Error {}

// --- XML ------------------------------------------------------------------------------------

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Text and CDATA directly inside, concatenated. */
  text: string;
  line: number;
}

const MAX_XML_BYTES = 16 * 1024 * 1024;
const MAX_DEPTH = 32;
const MAX_ELEMENTS = 100_000;
const NAME = /[A-Za-z_][\w.-]*/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Parses one XML document into its root element. Throws a WorkflowError naming the line. */
export function parseXml(text: string): XmlElement {
  if (Buffer.byteLength(text) > MAX_XML_BYTES) throw new WorkflowError(`the workflow XML is larger than ${MAX_XML_BYTES} bytes`);
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let elements = 0;
  const lineAt = (p: number) => text.slice(0, p).split('\n').length;
  const fail = (msg: string, p = pos): never => {
    throw new WorkflowError(`workflow XML line ${lineAt(p)}: ${msg}`);
  };
  const decode = (s: string, at: number): string =>
    s.replace(/&([^;&\s]*);?/g, (m, ent: string) => {
      if (!m.endsWith(';')) return fail(`a bare '&' (write &amp;)`, at);
      if (ent in PREDEFINED) return PREDEFINED[ent] as string;
      const num = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(ent);
      if (num) {
        const code = num[1] !== undefined ? parseInt(num[1], 16) : Number(num[2]);
        if (code > 0 && code <= 0x10ffff) return String.fromCodePoint(code);
      }
      return fail(`the entity &${ent}; is refused: only &lt; &gt; &amp; &quot; &apos; and &#N; are read, nothing is expanded`, at);
    });
  const skipMisc = () => {
    for (;;) {
      while (pos < text.length && /\s/.test(text[pos] as string)) pos++;
      if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos + 4);
        if (end < 0) fail('unclosed comment');
        pos = end + 3;
      } else if (text.startsWith('<?', pos)) {
        const end = text.indexOf('?>', pos + 2);
        if (end < 0) fail('unclosed processing instruction');
        pos = end + 2;
      } else if (text.startsWith('<!', pos) && !text.startsWith('<![CDATA[', pos)) {
        fail('a DOCTYPE or declaration is refused: a workflow XML needs none (no entity is ever expanded)');
      } else return;
    }
  };
  const readName = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(text);
    if (!m) return fail(`a name was expected at "${text.slice(pos, pos + 20)}"`);
    pos += m[0].length;
    return m[0];
  };
  const element = (depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`);
    if (++elements > MAX_ELEMENTS) fail(`more than ${MAX_ELEMENTS} elements`);
    const start = pos;
    if (text[pos] !== '<') fail('an element was expected');
    pos++;
    const el: XmlElement = { name: readName(), attrs: {}, children: [], text: '', line: lineAt(start) };
    for (;;) {
      while (/\s/.test(text[pos] ?? '')) pos++;
      if (text.startsWith('/>', pos)) {
        pos += 2;
        return el;
      }
      if (text[pos] === '>') {
        pos++;
        break;
      }
      if (pos >= text.length) fail(`unclosed tag <${el.name}>`, start);
      const attr = readName();
      while (/\s/.test(text[pos] ?? '')) pos++;
      if (text[pos] !== '=') fail(`attribute ${attr} of <${el.name}> has no value`);
      pos++;
      while (/\s/.test(text[pos] ?? '')) pos++;
      const q = text[pos];
      if (q !== '"' && q !== "'") return fail(`the value of attribute ${attr} must be quoted`);
      const end = text.indexOf(q, pos + 1);
      if (end < 0) fail(`unclosed value of attribute ${attr}`);
      const raw = text.slice(pos + 1, end);
      if (raw.includes('<')) fail(`'<' in the value of attribute ${attr}`);
      if (attr in el.attrs) fail(`attribute ${attr} given twice`);
      el.attrs[attr] = decode(raw, pos);
      pos = end + 1;
    }
    for (;;) {
      const lt = text.indexOf('<', pos);
      if (lt < 0) fail(`<${el.name}> is never closed`, start);
      el.text += decode(text.slice(pos, lt), pos);
      pos = lt;
      if (text.startsWith('<![CDATA[', pos)) {
        const end = text.indexOf(']]>', pos + 9);
        if (end < 0) fail('unclosed CDATA section');
        el.text += text.slice(pos + 9, end);
        pos = end + 3;
      } else if (text.startsWith('<!--', pos) || text.startsWith('<?', pos) || text.startsWith('<!', pos)) {
        skipMisc();
      } else if (text.startsWith('</', pos)) {
        pos += 2;
        const closing = readName();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}> of line ${el.line}`);
        while (/\s/.test(text[pos] ?? '')) pos++;
        if (text[pos] !== '>') fail(`'>' expected after </${closing}`);
        pos++;
        return el;
      } else {
        el.children.push(element(depth + 1));
      }
    }
  };
  skipMisc();
  if (pos >= text.length) fail('the file is empty');
  const root = element(0);
  skipMisc();
  if (pos < text.length) fail('text after the root element');
  return root;
}

// --- the workflow ---------------------------------------------------------------------------

export interface WorkflowParameter {
  name: string;
  type: string;
  linked: boolean;
  value: string;
}

export interface ScriptStep {
  /** The step instance's name (RunScriptStep1, ...). */
  name: string;
  executable: string;
  arguments: string;
  applicationLog: string;
  /** How many Script module instances its definition has (each runs the step's command). */
  runs: number;
}

export interface Workflow {
  name: string;
  parameters: Map<string, WorkflowParameter>;
  steps: ScriptStep[];
}

/** The element names DIRAC's WorkflowReader reads as attributes of the enclosing object. */
const ATTRIBUTE_ELEMENTS = new Set(['origin', 'version', 'name', 'type', 'value', 'required', 'descr_short', 'description', 'body']);
const CONTAINERS: Record<string, Set<string>> = {
  Workflow: new Set(['Parameter', 'ModuleDefinition', 'StepDefinition', 'StepInstance']),
  StepDefinition: new Set(['Parameter', 'ModuleDefinition', 'ModuleInstance']),
  ModuleDefinition: new Set(['Parameter']),
  ModuleInstance: new Set(['Parameter']),
  StepInstance: new Set(['Parameter']),
  Parameter: new Set(),
};
/** Parameter types whose value DIRAC keeps as text (Parameter.isTypeString). */
const STRING_TYPES = new Set(['string', 'jdl', 'option', 'parameter', 'jdlreqt']);
/** The import line `getStepDefinition()` writes for DIRAC's Script module. */
const SCRIPT_BODY = 'from DIRAC.Workflow.Modules.Script import Script';
/** Parameters DIRAC adds to module instances when it runs a workflow (a re-written XML may hold them). */
const RUNTIME_MODULE_PARAMETERS = new Set([
  'MODULE_NUMBER',
  'MODULE_INSTANCE_NAME',
  'MODULE_DEFINITION_NAME',
  'JOB_ID',
  'PRODUCTION_ID',
  'STEP_NUMBER',
  'STEP_ID',
]);

interface Node {
  el: XmlElement;
  attr: Record<string, string>;
  parameters: WorkflowParameter[];
  children: Node[];
}

function readNode(el: XmlElement): Node {
  const allowed = CONTAINERS[el.name];
  if (!allowed) throw new WorkflowError(`workflow XML line ${el.line}: <${el.name}> is not part of a DIRAC workflow`);
  const node: Node = { el, attr: {}, parameters: [], children: [] };
  for (const c of el.children) {
    if (ATTRIBUTE_ELEMENTS.has(c.name) && c.children.length === 0) {
      node.attr[c.name] = c.text;
    } else if (c.name === 'Parameter' && allowed.has('Parameter')) {
      node.parameters.push(readParameter(c));
    } else if (allowed.has(c.name)) {
      node.children.push(readNode(c));
    } else {
      throw new WorkflowError(`workflow XML line ${c.line}: <${c.name}> inside <${el.name}> is not part of a DIRAC workflow`);
    }
  }
  return node;
}

function readParameter(el: XmlElement): WorkflowParameter {
  const name = el.attrs['name'];
  if (!name) throw new WorkflowError(`workflow XML line ${el.line}: a <Parameter> without a name`);
  let value = '';
  for (const c of el.children) {
    if (c.name !== 'value' || c.children.length > 0) {
      throw new WorkflowError(`workflow XML line ${c.line}: <${c.name}> inside <Parameter name="${name}"> is not part of a DIRAC workflow`);
    }
    value = c.text;
  }
  return { name, type: el.attrs['type'] ?? 'string', linked: (el.attrs['linked_module'] ?? '') !== '', value };
}

/** Reads a workflow and checks that it holds only Script steps this program can run. */
export function readWorkflow(xml: string): Workflow {
  const root = parseXml(xml);
  if (root.name !== 'Workflow')
    throw new WorkflowError(`the root element is <${root.name}>, not <Workflow>: this is not a DIRAC job description`);
  const wf = readNode(root);
  const parameters = new Map(wf.parameters.map((p) => [p.name, p] as const));
  const moduleDefinitions = new Map<string, Node>();
  const stepDefinitions = new Map<string, Node>();
  const collectModules = (n: Node) => {
    for (const c of n.children) if (c.el.name === 'ModuleDefinition') moduleDefinitions.set(c.attr['type'] ?? '', c);
  };
  collectModules(wf);
  for (const c of wf.children) {
    if (c.el.name === 'StepDefinition') {
      collectModules(c);
      stepDefinitions.set(c.attr['type'] ?? '', c);
    }
  }

  const steps: ScriptStep[] = [];
  for (const inst of wf.children.filter((c) => c.el.name === 'StepInstance')) {
    const name = inst.attr['name'] ?? '';
    const where = `step ${name || '(unnamed)'} (line ${inst.el.line})`;
    const type = inst.attr['type'] ?? '';
    const definition = stepDefinitions.get(type);
    if (!definition) throw new WorkflowError(`${where}: its type ${type || '(none)'} has no <StepDefinition>`);
    let runs = 0;
    for (const mi of definition.children.filter((c) => c.el.name === 'ModuleInstance')) {
      const moduleType = mi.attr['type'] ?? '';
      const md = moduleDefinitions.get(moduleType);
      if (!md) throw new WorkflowError(`${where}: module ${moduleType || '(none)'} has no <ModuleDefinition>`);
      const body = (md.attr['body'] ?? '').trim();
      if (moduleType !== 'Script' || body !== SCRIPT_BODY) {
        const from = /^from\s+(\S+)\s+import/.exec(body)?.[1];
        throw new WorkflowError(
          `${where}: module ${moduleType}${from ? ` (from ${from})` : ''} is not supported: this dirac-jobexec runs DIRAC's Script module only (Job.setExecutable steps)`,
        );
      }
      const extra = mi.parameters.filter((p) => !RUNTIME_MODULE_PARAMETERS.has(p.name));
      if (extra.length > 0)
        throw new WorkflowError(`${where}: module parameters (${extra.map((p) => p.name).join(', ')}) are not supported`);
      runs++;
    }
    const own = new Map(inst.parameters.map((p) => [p.name, p] as const));
    const text = (p: WorkflowParameter | undefined, what: string): string | undefined => {
      if (!p) return undefined;
      if (p.linked) throw new WorkflowError(`${where}: ${what} is linked to another module's output, which is not supported`);
      if (!STRING_TYPES.has(p.type.toLowerCase())) throw new WorkflowError(`${where}: ${what} has type ${p.type}, not a string`);
      if (p.value.includes('@{'))
        throw new WorkflowError(`${where}: ${what} "${p.value}" holds an @{...} reference, which is not supported`);
      return p.value;
    };
    const stepArguments = text(own.get('arguments'), 'arguments') ?? '';
    steps.push({
      name,
      executable: text(own.get('executable'), 'executable') ?? 'Unknown',
      arguments: stepArguments.trim() ? stepArguments : '',
      applicationLog: text(own.get('applicationLog'), 'applicationLog') ?? text(own.get('logFile'), 'logFile') ?? 'applicationLog.txt',
      runs,
    });
  }
  // Blank step arguments take the workflow's (resolved at run time: -p may set them).
  return { name: wf.attr['name'] ?? '', parameters, steps };
}

/** Python's `shlex.split(s)` (POSIX mode, no comments). Throws on an unclosed quote or a trailing backslash. */
export function shlexSplit(s: string): string[] {
  return splitWords(s, (problem) => new WorkflowError(problem));
}

// --- running ---------------------------------------------------------------------------------

export interface RunIo {
  cwd: string;
  env: Record<string, string | undefined>;
  out(chunk: Buffer | string): void;
  err(chunk: Buffer | string): void;
  log(level: 'INFO' | 'ERROR' | 'VERBOSE', line: string): void;
}

export interface StepResult {
  step: string;
  /** 0: success. */
  status: number;
  message: string;
}

/** What DIRAC keeps of a step's output in memory (Script.bufferLimit). */
const BUFFER_LIMIT = 50 * 1024 * 1024;

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}

/** The command of a Script step as DIRAC's `Script._setCommand` builds it: [program, ...args] and the name its log uses. */
async function commandOf(step: ScriptStep, args: string, io: RunIo): Promise<{ argv: string[]; executable: string }> {
  let executable = step.executable;
  let program: string[];
  const local = join(io.cwd, basename(executable));
  if (basename(executable) !== '' && (await isFile(local))) {
    executable = basename(executable);
    if (
      !(await access(local, fsConstants.R_OK | fsConstants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      await chmod(local, 0o755);
    program = [local];
  } else if (/\.py$/.test(executable)) {
    program = ['python3', ...shlexSplit(executable)];
  } else {
    program = shlexSplit(executable); // as written, found in PATH (DIRAC runs it so whether shutil.which finds it or not)
  }
  const argv = [...program, ...(args ? shlexSplit(args) : [])];
  if (argv.length === 0) throw new WorkflowError('No executable defined');
  return { argv, executable };
}

function spawnStep(argv: string[], io: RunIo): Promise<{ status: number; stdout: Buffer; stderr: Buffer; startError?: string }> {
  return new Promise((resolve) => {
    const [file, ...rest] = argv as [string, ...string[]];
    const child = spawn(file, rest, { cwd: io.cwd, env: io.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = { out: [] as Buffer[], err: [] as Buffer[], outBytes: 0, errBytes: 0 };
    child.stdout.on('data', (b: Buffer) => {
      io.out(b);
      if (keep.outBytes < BUFFER_LIMIT) keep.out.push(b);
      keep.outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      io.err(b);
      if (keep.errBytes < BUFFER_LIMIT) keep.err.push(b);
      keep.errBytes += b.length;
    });
    let startError: string | undefined;
    child.once('error', (e: NodeJS.ErrnoException) => {
      startError = e.code === 'ENOENT' ? `${file}: not found` : e.code === 'EACCES' ? `${file}: permission denied` : e.message;
    });
    child.once('close', (code, signal) => {
      const status = startError !== undefined ? 127 : code !== null ? code : 128 + (signal ? (signalNumbers[signal] ?? 0) : 0);
      const kept = (parts: Buffer[], total: number) => {
        const b = Buffer.concat(parts);
        return total > b.length
          ? Buffer.concat([b, Buffer.from(`\n[${total - b.length} more bytes not kept here: see the job's std.out and std.err]\n`)])
          : b;
      };
      resolve({
        status,
        stdout: kept(keep.out, keep.outBytes),
        stderr: kept(keep.err, keep.errBytes),
        ...(startError !== undefined ? { startError } : {}),
      });
    });
  });
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** Writes a step's log as DIRAC's Script module does, replacing (never following) what is there. */
async function writeStepLog(io: RunIo, name: string, executable: string, stdout: Buffer, stderr: Buffer): Promise<void> {
  const path = join(io.cwd, name);
  await rm(path, { force: true });
  const parts: Buffer[] = [Buffer.from(`<<<<<<<<<< ${executable} Standard Output >>>>>>>>>>\n\n`), stdout, Buffer.from(' ')];
  if (stderr.length > 0) parts.push(Buffer.from(`<<<<<<<<<< ${executable} Standard Error >>>>>>>>>>\n\n`), stderr, Buffer.from(' '));
  await writeFile(path, Buffer.concat(parts), { flag: 'wx' });
}

/** Words for a log line, quoted where a blank or quote would hide where they end. */
function shown(argv: string[]): string {
  return argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'"'"'`)}'`)).join(' ');
}

/** Runs one Script step; its result (status 0: success). */
export async function runStep(step: ScriptStep, workflowArguments: string, io: RunIo): Promise<StepResult> {
  const app = basename(step.executable).split('_')[0];
  const args = step.arguments.trim() ? step.arguments : workflowArguments;
  let cmd;
  try {
    if (!step.executable) throw new WorkflowError('No executable defined');
    cmd = await commandOf(step, args, io);
  } catch (e) {
    return { step: step.name, status: 0, message: `${step.name}: ${(e as Error).message}` };
  }
  io.log('INFO', `${step.name}: Command is: ${shown(cmd.argv)}`);
  const r = await spawnStep(cmd.argv, io);
  if (r.startError !== undefined) io.log('ERROR', `${step.name}: cannot run ${r.startError}`);
  try {
    await writeStepLog(io, step.applicationLog, cmd.executable, r.stdout, r.stderr);
    io.log('INFO', `${step.name}: Output written to ${step.applicationLog}`);
  } catch (e) {
    return { step: step.name, status: 0, message: `${step.name}: cannot write its log ${step.applicationLog}: ${(e as Error).message}` };
  }
  if (r.status !== 0) {
    io.log('ERROR', `${step.name}: Non-zero status while executing ${shown(cmd.argv)}: exited with status ${r.status}`);
    return { step: step.name, status: r.status, message: `'${app}' Exited With Status ${r.status}` };
  }
  io.log('INFO', `${step.name}: '${app}' successful`);
  return { step: step.name, status: 0, message: '' };
}

/**
 * Runs every step in order (all of them, as DIRAC does), and answers the exit code: 0, or the
 * status of the last failed step (1 when that is 0 modulo 256 or it failed without one).
 */
export async function runWorkflow(wf: Workflow, io: RunIo): Promise<{ exitCode: number; failures: StepResult[] }> {
  const failures: StepResult[] = [];
  const workflowArguments = wf.parameters.get('arguments')?.value ?? '';
  for (const step of wf.steps) {
    if (step.runs === 0) io.log('INFO', `${step.name}: no module to run`);
    for (let i = 0; i < step.runs; i++) {
      const r = await runStep(step, workflowArguments, io);
      if (r.status !== 0 || r.message) {
        if (r.status === 0) io.log('ERROR', r.message);
        failures.push(r);
      }
    }
  }
  const last = failures.at(-1);
  if (!last) return { exitCode: 0, failures };
  const code = last.status & 0xff;
  return { exitCode: code === 0 ? 1 : code, failures };
}
