/**
 * Issue 11, acceptance: a job written by DIRAC's Python job API is submitted unchanged with
 * `wms job submit` and runs to Done on the local site, its workflow run by the pilot bundle's
 * `dirac-jobexec` stand-in (pilot/dirac-jobexec.ts, pilot/dirac-workflow.ts).
 *
 * The fixtures (tests/fixtures/dirac/) are what DIRAC writes for this physicist's script, run in
 * /home/physicist/analysis next to analysis.sh and cuts.txt:
 *
 * ```python
 * j = Job()
 * j.setName("higgs-candidates")
 * j.setExecutable("echo", arguments="step one: hello from DIRAC")
 * j.setExecutable("analysis.sh", arguments="--cuts cuts.txt --label 'two words'")
 * j.setInputSandbox(["analysis.sh", "cuts.txt"])
 * j.setOutputSandbox(["result.txt"])
 * j.setCPUTime(3600)
 * j.setLogLevel("debug")
 * j.setDestination("Local.localhost")
 * j.setJobGroup("higgs_search")
 * j.setPriority(3)
 * open("jobDescription.xml", "w").write(j._toXML())
 * open("job.jdl", "w").write(j._toJDL())
 * ```
 * (no setTag: the local queue advertises no tag, and a job's tags must all be the pilot's).
 * Derived by hand from DIRAC (v9, src/DIRAC/), since DIRAC cannot run here:
 * - job.jdl: `Interfaces/API/Job.py`, `Job._toJDL()`: every workflow parameter of type JDL goes
 *   in with `insertAttributeInt` (unquoted; a value holding `;` becomes a list through
 *   `insertAttributeVectorInt`, unquoted items), empty ones (InputData) are left out; Executable
 *   (`self.executable`, "dirac-jobexec") and Arguments (the XML's base name, `-o LogLevel=...`)
 *   with `insertAttributeString` (quoted); InputSandbox gets the files `setExecutable` found
 *   locally and `os.path.abspath("jobDescription.xml")` (the submitter's absolute path),
 *   deduplicated by `uniqueElements`; OutputSandbox gets each step's log, then std.err and
 *   std.out. `Core/Utilities/ClassAd/ClassAdLight.py`, `ClassAd.asJDL()`: attributes sorted, four
 *   spaces, lists over several lines; `_toJDL` then cuts the text between `[` and the newline
 *   before `]`: a blank first line and no newline at the end.
 * - Defaults: `Job.__init__` and `Job.__setJobDefaults` (JobType User, Priority, JobGroup,
 *   JobName, StdOutput std.out, StdError std.err, InputData "", LogLevel, and the string-typed
 *   arguments, ParametricInputData, ParametricInputSandbox); each setter overwrites its parameter
 *   in place (`Core/Workflow/Parameter.py`, `ParameterCollection.appendOrOverwrite`).
 * - Step logs: `Job.setExecutable`: `Script<N>_<base name>.log` for a local file,
 *   `Script<N>_CodeOutput.log` otherwise; steps `RunScriptStep<N>` of type `ScriptStep<N>`
 *   (`Workflow/Utilities/Utils.py`, `getStepDefinition`, `addStepToWorkflow`).
 * - jobDescription.xml: `Core/Workflow/Workflow.py` `toXML()` (attributes, parameters, module
 *   definitions, step definitions, step instances), `Parameter.toXML()` (every value in CDATA,
 *   nothing escaped), `AttributeCollection.toXML()` (sorted; body and description in CDATA),
 *   `Module.py` and `Step.py` `toXML()`; the Script module's definition has the module's
 *   docstring (`Workflow/Modules/Script.py`) as description.
 * How dirac-jobexec runs it: `WorkloadManagementSystem/scripts/dirac_jobexec.py`,
 * `Workflow/Modules/Script.py` (`_setCommand`, `_executeCommand`: shlex.split, no shell; the
 * log's `<<<<<<<<<< exe Standard Output >>>>>>>>>>` header), `Core/Workflow/Step.py` and
 * `Workflow.py` `execute()` (every step runs; the last failure's status is the exit code), and
 * DIRAC's own test of it, `tests/Integration/WorkloadManagementSystem/Test_dirac-jobexec.sh`
 * (111 stays 111, 1502 becomes 222).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIsolationUnavailable, resolvePayloadSandbox, SYSTEM_PATH, type PayloadSandbox } from '../../pilot/isolation.js';
import { installPayloadTools, PAYLOAD_TOOLS_DIR } from '../../pilot/payload-tools.js';
import { BUNDLE_DIR, describeSystem, type SystemCtx } from '../helpers/system.js';

const root = resolve(import.meta.dirname, '../..');
const FIXTURES = join(root, 'tests/fixtures/dirac');
/** The submitter's directory, as DIRAC wrote it into job.jdl. */
const SUBMIT_DIR = '/home/physicist/analysis';
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const STAND_IN = join(BUNDLE_DIR, 'dirac-jobexec.cjs');

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wms-e2e-dirac-'));
  await chmod(scratch, 0o1777);
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** The submitter's directory: the fixtures, job.jdl with its absolute paths pointing here. */
async function submitDir(over: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(scratch, 'analysis-'));
  for (const f of ['jobDescription.xml', 'analysis.sh', 'cuts.txt']) await copyFile(join(FIXTURES, f), join(dir, f));
  const jdl = await readFile(join(FIXTURES, 'job.jdl'), 'utf8');
  await writeFile(join(dir, 'job.jdl'), jdl.split(SUBMIT_DIR).join(dir));
  for (const [name, text] of Object.entries(over)) await writeFile(join(dir, name), text);
  return dir;
}

/** `wms job submit job.jdl --json` as a user runs it, in the submitter's directory. */
async function submitWithCli(sys: SystemCtx, dir: string): Promise<number> {
  const r = await run(process.execPath, ['--import', tsx, join(root, 'cli/main.ts'), 'job', 'submit', 'job.jdl', '--json'], dir, {
    WMS_URL: sys.url,
    WMS_TOKEN: await sys.token(),
    XDG_CONFIG_HOME: join(dir, '.no-config'),
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const { jobIds } = JSON.parse(r.stdout) as { jobIds: number[] };
  expect(jobIds).toHaveLength(1);
  return jobIds[0] as number;
}

async function outputFiles(sys: SystemCtx, jobId: number): Promise<Record<string, string>> {
  const out = await sys.api('GET', `/api/jobs/${jobId}/output`, undefined, await sys.token());
  expect(out.sandboxes).toHaveLength(1);
  const res = await fetch(`${sys.url}/api/sandboxes/${out.sandboxes[0].sha256}`, {
    headers: { authorization: `Bearer ${await sys.token()}` },
  });
  expect(res.status).toBe(200);
  const dir = await mkdtemp(join(scratch, 'out-'));
  const archive = join(dir, 'out.tar.gz');
  await writeFile(archive, Buffer.from(await res.arrayBuffer()));
  await new Promise<void>((ok, ko) => execFile('tar', ['-xzf', archive, '-C', dir], (e) => (e ? ko(e) : ok())));
  const files: Record<string, string> = {};
  for (const f of await readdir(dir)) if (f !== 'out.tar.gz') files[f] = await readFile(join(dir, f), 'utf8');
  return files;
}

describe('the DIRAC job API fixtures', () => {
  it('are what Job._toJDL() writes: unquoted values, sorted, lists over lines, no brackets', async () => {
    const jdl = await readFile(join(FIXTURES, 'job.jdl'), 'utf8');
    expect(jdl.startsWith(' \n    Arguments = "jobDescription.xml -o LogLevel=debug";\n')).toBe(true);
    expect(jdl.endsWith('    StdOutput = std.out;')).toBe(true);
    const names = [...jdl.matchAll(/^ {4}(\w+) = /gm)].map((m) => m[1]);
    expect(names).toEqual([...names].sort());
    expect(jdl).toContain('    Site = Local.localhost;\n');
    expect(jdl).toContain(
      `    InputSandbox = \n        {\n            analysis.sh,\n            cuts.txt,\n            ${SUBMIT_DIR}/jobDescription.xml\n        };\n`,
    );
    expect(jdl).not.toMatch(/[[\]]/);
  });
});

describe('the dirac-jobexec stand-in', () => {
  /** A workflow as Job.setExecutable() writes it, one step per entry (modules: Script unless given). */
  function workflowXml(steps: { exe: string; args?: string; log?: string; modules?: string[] }[], prolog = ''): string {
    const par = (n: string, v: string) =>
      `<Parameter name="${n}" type="string" linked_module="" linked_parameter="" in="True" out="False" description="${n}"><value><![CDATA[${v}]]></value></Parameter>\n`;
    const module = (m: string) =>
      `<ModuleDefinition>\n<body><![CDATA[\nfrom DIRAC.Workflow.Modules.${m} import ${m}\n]]></body>\n<descr_short></descr_short>\n<description><![CDATA[]]></description>\n<origin></origin>\n<required></required>\n<type>${m}</type>\n<version>0.0</version>\n</ModuleDefinition>\n`;
    const modules = [...new Set(steps.flatMap((s) => s.modules ?? ['Script']))];
    let x = `${prolog}<Workflow>\n<name>test</name>\n${par('arguments', '')}${modules.map(module).join('')}`;
    steps.forEach((s, i) => {
      x += `<StepDefinition>\n<type>ScriptStep${i + 1}</type>\n${par('executable', '')}${(s.modules ?? ['Script'])
        .map((m) => `<ModuleInstance>\n<descr_short></descr_short>\n<name>${m}</name>\n<type>${m}</type>\n</ModuleInstance>\n`)
        .join('')}</StepDefinition>\n`;
    });
    steps.forEach((s, i) => {
      x += `<StepInstance>\n<name>RunScriptStep${i + 1}</name>\n<type>ScriptStep${i + 1}</type>\n${par('executable', s.exe)}${par('arguments', s.args ?? '')}${par('applicationLog', s.log ?? `Script${i + 1}_CodeOutput.log`)}</StepInstance>\n`;
    });
    return `${x}</Workflow>\n`;
  }

  async function jobexec(xml: string, args: string[] = [], files: Record<string, string> = {}): Promise<Run & { dir: string }> {
    const dir = await mkdtemp(join(scratch, 'jobexec-'));
    await writeFile(join(dir, 'jobDescription.xml'), xml);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    return { ...(await run(process.execPath, [STAND_IN, 'jobDescription.xml', ...args], dir)), dir };
  }

  beforeAll(() => {
    if (!existsSync(STAND_IN)) throw new Error(`no ${STAND_IN}: run npm run build`);
  });

  it("runs the fixture's steps: shlex words, the step logs, output passed through", async () => {
    const dir = await submitDir();
    const r = await run(process.execPath, [STAND_IN, 'jobDescription.xml', '-o', 'LogLevel=debug'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('step one: hello from DIRAC\n');
    expect(r.stdout).toContain('label: two words\n');
    expect(r.stderr).toContain('analysis.sh: 1 event without a vertex skipped');
    expect(await readFile(join(dir, 'Script1_CodeOutput.log'), 'utf8')).toBe(
      '<<<<<<<<<< echo Standard Output >>>>>>>>>>\n\nstep one: hello from DIRAC\n ',
    );
    expect(await readFile(join(dir, 'Script2_analysis.sh.log'), 'utf8')).toBe(
      '<<<<<<<<<< analysis.sh Standard Output >>>>>>>>>>\n\nlabel: two words\ncuts: pt>25 eta<2.5\nanalysis done\n ' +
        '<<<<<<<<<< analysis.sh Standard Error >>>>>>>>>>\n\nanalysis.sh: 1 event without a vertex skipped\n ',
    );
  });

  it("exits as DIRAC's own test expects: 111 stays 111, 1502 becomes 222; later steps still run", async () => {
    const scripts = await mkdtemp(join(scratch, 'scripts-'));
    await writeFile(join(scripts, 'script.sh'), 'echo failing; exit 111\n');
    await writeFile(join(scripts, 'script-RESC.sh'), 'exit 1502\n');
    const fail = await jobexec(workflowXml([{ exe: `sh ${scripts}/script.sh` }, { exe: 'echo', args: 'still runs', log: 'second.log' }]));
    expect(fail.code).toBe(111);
    expect(fail.stdout).toContain('still runs');
    expect(fail.stderr).toContain("('script.sh' Exited With Status 111)"); // DIRAC names the application by the base name
    expect(await readFile(join(fail.dir, 'Script1_CodeOutput.log'), 'utf8')).toContain('failing');
    const resc = await jobexec(workflowXml([{ exe: `sh ${scripts}/script-RESC.sh` }]));
    expect(resc.code).toBe(222);
    const missing = await jobexec(workflowXml([{ exe: 'no-such-program-here' }]));
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('cannot run no-such-program-here: not found');
  });

  it('refuses a module other than Script, before any step runs', async () => {
    const r = await jobexec(
      workflowXml([
        { exe: 'touch', args: 'ran' },
        { exe: 'echo', modules: ['Script', 'FailoverRequest'] },
      ]),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /step RunScriptStep2 .*module FailoverRequest \(from DIRAC\.Workflow\.Modules\.FailoverRequest\) is not supported/,
    );
    expect(existsSync(join(r.dir, 'ran'))).toBe(false);
  });

  it('refuses DOCTYPEs and entities (nothing expanded), and what is not a workflow', async () => {
    const laughs = '<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n';
    const doctype = await jobexec(workflowXml([{ exe: 'touch', args: 'ran' }], laughs));
    expect(doctype.code).toBe(1);
    expect(doctype.stderr).toContain('a DOCTYPE or declaration is refused');
    expect(existsSync(join(doctype.dir, 'ran'))).toBe(false);
    const entity = await jobexec(workflowXml([{ exe: 'touch', args: 'ran' }]).replace('<name>test</name>', '<name>&xxe;</name>'));
    expect(entity.code).toBe(1);
    expect(entity.stderr).toMatch(/line 2: the entity &xxe; is refused/);
    const other = await jobexec('<Workflow>\n<Script>rm -rf /</Script>\n</Workflow>\n');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('line 2: <Script> inside <Workflow> is not part of a DIRAC workflow');
    const broken = await jobexec('<Workflow>\n<name>x</nam>\n</Workflow>\n');
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('line 2: </nam> closes <name>');
  });

  it('refuses switches it cannot honour; a step log that is a link is replaced, never followed', async () => {
    const xml = workflowXml([{ exe: 'echo', args: 'x' }]);
    for (const args of [
      ['--cfg', 'pilot.cfg'],
      ['-o', '/DIRAC/Setup=Production'],
      ['-o', 'LogLevel=LOUD'],
    ]) {
      const r = await jobexec(xml, args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^dirac-jobexec: /);
    }
    const victim = join(scratch, `victim-${Date.now()}`);
    await writeFile(victim, 'untouched\n');
    const dir = await mkdtemp(join(scratch, 'jobexec-'));
    await writeFile(join(dir, 'jobDescription.xml'), xml);
    await symlink(victim, join(dir, 'Script1_CodeOutput.log'));
    const r = await run(process.execPath, [STAND_IN, 'jobDescription.xml'], dir);
    expect(r.code).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe('untouched\n');
    expect(await readFile(join(dir, 'Script1_CodeOutput.log'), 'utf8')).toContain('Standard Output');
    // -p arguments=... fills a step's blank arguments, as the parametric JDLs of the API use it.
    const p = await jobexec(workflowXml([{ exe: 'echo' }]), ['-p', 'arguments=from -p']);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('from -p\n');
  });
});

describe('dirac-jobexec on the PATH of every isolation mode', () => {
  for (const mode of ['none', 'user', 'bwrap'] as const) {
    it(`${mode}: Executable "dirac-jobexec" is found and runs the workflow as the payload`, async (ctx) => {
      let sandbox: PayloadSandbox;
      try {
        sandbox = await resolvePayloadSandbox({ mode, hostPath: SYSTEM_PATH });
      } catch (e) {
        if (!isIsolationUnavailable(e)) throw e;
        console.warn(`[e2e] SKIPPING isolation ${mode} (not available on this machine): ${e.message}`);
        return ctx.skip();
      }
      const workDir = await mkdtemp(join(scratch, 'work-'));
      await chmod(workDir, 0o711);
      const jobDir = join(workDir, '7');
      await mkdir(jobDir);
      for (const f of ['jobDescription.xml', 'analysis.sh', 'cuts.txt']) await copyFile(join(FIXTURES, f), join(jobDir, f));
      const tools = await installPayloadTools(jobDir, BUNDLE_DIR);
      expect(tools).toBe(join(jobDir, PAYLOAD_TOOLS_DIR));
      const base = sandbox.baseEnv(jobDir);
      const env = { ...base, PATH: `${base['PATH']}:${tools}` };
      expect(await sandbox.unreachableExecutable('dirac-jobexec', jobDir, env)).toBeNull();
      await sandbox.prepare(workDir, jobDir);
      const cmd = sandbox.command('dirac-jobexec', ['jobDescription.xml', '-o', 'LogLevel=debug'], jobDir, env);
      const r = await new Promise<Run>((done, fail) => {
        const child = spawn(cmd.file, cmd.args, {
          cwd: jobDir,
          env: cmd.env,
          stdio: ['ignore', 'pipe', 'pipe', ...(cmd.envFd ? (['pipe'] as const) : [])],
          ...(cmd.uid !== undefined ? { uid: cmd.uid, gid: cmd.gid } : {}),
        });
        if (cmd.envFd) (child.stdio[3] as NodeJS.WritableStream).end(cmd.envFd);
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', fail);
        child.on('close', (code) => done({ code, stdout, stderr }));
      });
      expect(r.stderr).not.toMatch(/not found|ERROR/);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('label: two words\n');
      expect(await readFile(join(jobDir, 'result.txt'), 'utf8')).toBe('selected 42 events\n');
      expect(await readFile(join(jobDir, 'Script1_CodeOutput.log'), 'utf8')).toContain('step one: hello from DIRAC');
    });
  }

  it('an input sandbox entry named like the tools directory is replaced, never written through', async () => {
    const jobDir = await mkdtemp(join(scratch, 'job-'));
    const elsewhere = await mkdtemp(join(scratch, 'elsewhere-'));
    await symlink(elsewhere, join(jobDir, PAYLOAD_TOOLS_DIR));
    const tools = await installPayloadTools(jobDir, BUNDLE_DIR);
    expect(tools).toBe(join(jobDir, PAYLOAD_TOOLS_DIR));
    expect((await lstat(tools as string)).isDirectory()).toBe(true);
    expect(await readdir(elsewhere)).toEqual([]);
    expect((await readdir(tools as string)).sort()).toEqual(['dirac-jobexec', 'dirac-jobexec.cjs']);
    // Without a bundle next to it (the pilot run from its sources), nothing is installed.
    expect(await installPayloadTools(await mkdtemp(join(scratch, 'job-')), await mkdtemp(join(scratch, 'empty-')))).toBeNull();
  });
});

describeSystem("a JDL written by DIRAC's job API", (sys) => {
  it('is submitted unchanged with wms job submit and runs to Done on the local site', async () => {
    const dir = await submitDir();
    const id = await submitWithCli(sys, dir);
    const job = await sys.waitForStatus(id, ['Done', 'Failed'], 120_000);
    expect(job).toMatchObject({
      status: 'Done',
      minorStatus: 'Execution Complete',
      jobName: 'higgs-candidates',
      jobGroup: 'higgs_search',
      priority: 3,
    });
    const files = await outputFiles(sys, id);
    expect(Object.keys(files).sort()).toEqual(['Script1_CodeOutput.log', 'Script2_analysis.sh.log', 'result.txt', 'std.err', 'std.out']);
    expect(files['std.out']).toContain('step one: hello from DIRAC\n');
    expect(files['std.out']).toContain('label: two words\ncuts: pt>25 eta<2.5\nanalysis done\n');
    expect(files['std.out']).toContain('Workflow execution successful');
    expect(files['std.err']).toContain('analysis.sh: 1 event without a vertex skipped');
    expect(files['Script1_CodeOutput.log']).toBe('<<<<<<<<<< echo Standard Output >>>>>>>>>>\n\nstep one: hello from DIRAC\n ');
    expect(files['Script2_analysis.sh.log']).toMatch(/^<<<<<<<<<< analysis\.sh Standard Output >>>>>>>>>>\n\nlabel: two words\n/);
    expect(files['result.txt']).toBe('selected 42 events\n');
  });

  it('a step that fails: the job is Failed with its exit code, the reason in std.err and the step log', async () => {
    const dir = await submitDir({ 'analysis.sh': '#!/bin/bash\necho "cannot open $2" >&2\nexit 3\n' });
    const id = await submitWithCli(sys, dir);
    const job = await sys.waitForStatus(id, ['Done', 'Failed'], 120_000);
    expect(job).toMatchObject({ status: 'Failed', minorStatus: 'Application Finished With Errors', applicationStatus: 'Exit code 3' });
    const files = await outputFiles(sys, id);
    expect(files['std.out']).toContain('step one: hello from DIRAC\n');
    expect(files['std.err']).toContain("Workflow execution finished with errors ('analysis.sh' Exited With Status 3): exit code 3");
    expect(files['Script2_analysis.sh.log']).toContain('cannot open cuts.txt');
    expect(files['result.txt']).toBeUndefined();
  });
});
