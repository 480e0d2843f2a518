/**
 * `dirac-jobexec`: the stand-in for DIRAC's program of that name, so that a JDL written by
 * DIRAC's job API (`Executable = "dirac-jobexec"; Arguments = "jobDescription.xml -o
 * LogLevel=INFO"`) runs unchanged. Bundled to `dist/pilot/dirac-jobexec.cjs` and shipped in the
 * pilot bundle; the job wrapper puts it on every payload's PATH (payload-tools.ts). It runs as
 * the payload, inside its sandbox. What it runs and how: dirac-workflow.ts.
 *
 * Usage (DIRAC's WorkloadManagementSystem/scripts/dirac_jobexec.py):
 *   dirac-jobexec <jobXMLfile> [-o LogLevel=<level>] [-p <name>=<value>]... [-d...]
 * `-p` sets a workflow parameter (`{a, b}` becomes `a;b`); any other switch or option (`--cfg`,
 * `-o` other than LogLevel) is refused, because this program has no DIRAC configuration to
 * apply it to.
 *
 * Exit codes: 0 every step succeeded; the failed step's status (see dirac-workflow.ts); 1 the
 * command line, the XML or the workflow cannot be used (nothing has run).
 */
import { readFile } from 'node:fs/promises';
import { readWorkflow, runWorkflow, WorkflowError, type RunIo } from './dirac-workflow.js';

/** DIRAC's log levels (gLogger), in the order of verbosity. */
const LEVELS = ['DEBUG', 'VERBOSE', 'INFO', 'WARN', 'NOTICE', 'ERROR', 'ALWAYS', 'FATAL'] as const;

const USAGE = 'usage: dirac-jobexec <jobXMLfile> [-o LogLevel=<level>] [-p <name>=<value>]...';

interface Args {
  xml: string;
  level: (typeof LEVELS)[number];
  parameters: [string, string][];
}

function parseArgs(argv: string[]): Args | 'help' {
  const positional: string[] = [];
  const parameters: [string, string][] = [];
  let level: Args['level'] = 'INFO';
  const valueOf = (i: number, attached: string, what: string): [string, number] => {
    if (attached) return [attached, i];
    const next = argv[i + 1];
    if (next === undefined) throw new WorkflowError(`${what} needs a value`);
    return [next, i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    let m: RegExpExecArray | null;
    if (a === '-h' || a === '--help') return 'help';
    if (/^-d+$/.test(a) || a === '--debug') {
      level = 'DEBUG';
    } else if ((m = /^(?:-o|--option=)(.*)$/.exec(a))) {
      let opt: string;
      [opt, i] = valueOf(i, m[1] as string, '-o');
      const lv = /^\/?LogLevel=(.*)$/.exec(opt);
      if (!lv) throw new WorkflowError(`option ${opt} is not supported (only -o LogLevel=<level>): there is no DIRAC configuration here`);
      const wanted = (lv[1] as string).trim().toUpperCase();
      const found = LEVELS.find((l) => l === wanted);
      if (!found) throw new WorkflowError(`LogLevel ${lv[1]} is not one of ${LEVELS.join(', ')}`);
      level = found;
    } else if ((m = /^(?:-p|--parameter=)(.*)$/.exec(a))) {
      let p: string;
      [p, i] = valueOf(i, m[1] as string, '-p');
      const eq = p.indexOf('=');
      if (eq <= 0) throw new WorkflowError(`-p ${p}: expected <name>=<value>`);
      let value = p.slice(eq + 1).trim();
      if (value.startsWith('{')) value = value.slice(1, -1).replace(/["\s]/g, '').split(',').join(';');
      parameters.push([p.slice(0, eq), value]);
    } else if (a.startsWith('-') && a !== '-') {
      throw new WorkflowError(`${a} is not supported by this dirac-jobexec (${USAGE})`);
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 1) throw new WorkflowError(`Must specify the Job XML file description (${USAGE})`);
  return { xml: positional[0] as string, level, parameters };
}

async function main(argv: string[]): Promise<number> {
  let level: Args['level'] = 'INFO';
  const stamp = () =>
    new Date()
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC');
  const io: RunIo = {
    cwd: process.cwd(),
    env: process.env,
    out: (c) => process.stdout.write(c),
    err: (c) => process.stderr.write(c),
    log: (lv, line) => {
      if (LEVELS.indexOf(lv) < LEVELS.indexOf(level)) return;
      (lv === 'ERROR' ? process.stderr : process.stdout).write(`${stamp()} dirac-jobexec ${lv}: ${line}\n`);
    },
  };
  try {
    const args = parseArgs(argv);
    if (args === 'help') {
      process.stdout.write(`${USAGE}\nRuns the Script steps of a DIRAC job description (pilot-wms stand-in for DIRAC's dirac-jobexec).\n`);
      return 0;
    }
    level = args.level;
    let text: string;
    try {
      text = await readFile(args.xml, 'utf8');
    } catch (e) {
      throw new WorkflowError(`cannot read the workflow ${args.xml}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const wf = readWorkflow(text);
    for (const [name, value] of args.parameters) {
      const p = wf.parameters.get(name);
      if (p) p.value = value;
      else io.log('ERROR', `-p ${name}: the workflow has no parameter ${name}; ignored (as DIRAC does)`);
    }
    io.log('INFO', `workflow ${wf.name}: ${wf.steps.length} step(s): ${wf.steps.map((s) => s.name).join(', ')}`);
    for (const s of wf.steps) io.log('VERBOSE', `${s.name}: executable ${s.executable}, arguments ${s.arguments}, log ${s.applicationLog}`);
    const { exitCode, failures } = await runWorkflow(wf, io);
    if (exitCode === 0) io.log('INFO', 'Workflow execution successful');
    else io.log('ERROR', `Workflow execution finished with errors (${failures.map((f) => f.message).join('; ')}): exit code ${exitCode}`);
    return exitCode;
  } catch (e) {
    if (!(e instanceof WorkflowError)) throw e;
    process.stderr.write(`dirac-jobexec: ${e.message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`dirac-jobexec: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
