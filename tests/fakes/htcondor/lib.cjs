'use strict';
/*
 * A simulator of the HTCondor command-line tools (condor_submit, condor_q, condor_history,
 * condor_rm) for tests: see README.md beside it. Not HTCondor code; the output formats follow
 * the documented ones (shared/reference/backends.md section 3).
 *
 * State lives in $WMS_FAKE_CONDOR_DIR:
 *   next_cluster          the next cluster id
 *   queue/<c>.<p>.json    job ads still in the queue (Idle, Running, Held)
 *   history/<c>.<p>.json  job ads that left it (Completed 4, Removed 3)
 *   spool/<c>.<p>/        spooled executable and outputs of -remote submissions
 *   lock/                 one mutex (mkdir) around every read-modify-write
 * Each job gets a "shadow" (shadow.cjs, detached) that starts its executable after an idle
 * period and records its end.
 */
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawn } = require('node:child_process');

const HOST = os.hostname();
const SCHEDD_ADDR = '<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=' + HOST + '&noUDP&sock=schedd_1_fake>';

class UsageError extends Error {}

function stateDir() {
  const dir = process.env.WMS_FAKE_CONDOR_DIR;
  if (!dir) {
    process.stderr.write('fake HTCondor: WMS_FAKE_CONDOR_DIR is not set\n');
    process.exit(2);
  }
  for (const sub of ['queue', 'history', 'spool']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  return dir;
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs fn while holding the state directory's mutex. */
function withLock(dir, fn) {
  const lock = path.join(dir, 'lock');
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 5000) fs.rmdirSync(lock); // stale
      } catch {}
      if (Date.now() > deadline) throw new Error('fake HTCondor: state lock busy', { cause: e });
      sleepSync(5);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmdirSync(lock);
  }
}

const now = () => Math.floor(Date.now() / 1000);
const queuePath = (dir, id) => path.join(dir, 'queue', id + '.json');
const historyPath = (dir, id) => path.join(dir, 'history', id + '.json');

function readAd(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function writeAd(file, ad) {
  const tmp = file + '.' + process.pid + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(ad));
  fs.renameSync(tmp, file);
}

function listAds(dir, sub) {
  const ads = [];
  for (const name of fs.readdirSync(path.join(dir, sub))) {
    if (!name.endsWith('.json')) continue;
    const ad = readAd(path.join(dir, sub, name));
    if (ad) ads.push(ad);
  }
  return ads.sort((a, b) => a.ClusterId - b.ClusterId || a.ProcId - b.ProcId);
}

const jobId = (ad) => ad.ClusterId + '.' + ad.ProcId;

/** Appends one event to the job's user log in the classic event-log text form. */
function logEvent(ad, code, text) {
  if (!ad.UserLog) return;
  const d = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const stamp = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const head = `${pad(code, 3)} (${pad(ad.ClusterId, 3)}.${pad(ad.ProcId, 3)}.000) ${stamp} `;
  try {
    fs.appendFileSync(ad.UserLog, head + text + '\n...\n');
  } catch {}
}

// ---------------------------------------------------------------- option parsing

/** Splits argv into options (with the given ones taking a value) and positionals. */
function parseArgs(argv, withValue) {
  const opts = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('-') && a.length > 1) {
      const name = a.replace(/^-+/, '');
      const key = name.split(':')[0];
      if (withValue.includes(key)) {
        if (i + 1 >= argv.length) throw new UsageError(`option -${key} requires an argument`);
        opts[key] = argv[++i];
      } else opts[key] = name.includes(':') ? name.split(':')[1] : true;
    } else rest.push(a);
  }
  return { opts, rest };
}

/** The token the client would present: _CONDOR_SCITOKENS_FILE, or a file in _CONDOR_SEC_TOKEN_DIRECTORY. */
function presentedToken() {
  const read = (f) => {
    try {
      return fs.readFileSync(f, 'utf8').trim();
    } catch {
      return null;
    }
  };
  if (process.env._CONDOR_SCITOKENS_FILE) return read(process.env._CONDOR_SCITOKENS_FILE);
  const d = process.env._CONDOR_SEC_TOKEN_DIRECTORY;
  if (d) {
    try {
      for (const f of fs.readdirSync(d)) {
        const t = read(path.join(d, f));
        if (t) return t;
      }
    } catch {}
  }
  return null;
}

function checkSchedd(tool, opts) {
  const want = process.env.WMS_FAKE_CONDOR_TOKEN;
  if (want && process.env.WMS_FAKE_CONDOR_DOWN !== '1' && presentedToken() !== want) {
    const target = opts.name || opts.remote;
    const where = opts.pool ? '<' + opts.pool + '>' : '<127.0.0.1:9618>';
    const auth = 'AUTHENTICATE:1003:Failed to authenticate with any method\n';
    if (tool === 'condor_submit')
      process.stderr.write(`\nERROR: Failed to connect to ${target ? 'queue manager ' + target : 'local queue manager'}\n${auth}`);
    else if (tool === 'condor_rm')
      process.stderr.write(`Failed to connect to ${target ? 'queue manager ' + target : 'local queue manager'}\n${auth}`);
    else process.stderr.write(`\n-- Failed to fetch ads from: ${where} : ${target || HOST}\n${auth}`);
    process.exit(1);
  }
  if (process.env.WMS_FAKE_CONDOR_DOWN !== '1') return;
  const target = opts.name || opts.remote;
  const where = opts.pool ? '<' + opts.pool + '>' : '<127.0.0.1:9618>';
  if (tool === 'condor_submit') {
    process.stderr.write(
      (target ? `\nERROR: Failed to connect to queue manager ${target}\n` : '\nERROR: Failed to connect to local queue manager\n') +
        `CEDAR:6001:Failed to connect to ${where}\n`,
    );
  } else if (tool === 'condor_q' || tool === 'condor_history') {
    process.stderr.write(`\n-- Failed to fetch ads from: ${where} : ${target || HOST}\nCEDAR:6001:Failed to connect to ${where}\n`);
  } else {
    process.stderr.write(
      `Failed to connect to ${target ? 'queue manager ' + target : 'local queue manager'}\nCEDAR:6001:Failed to connect to ${where}\n`,
    );
  }
  process.exit(1);
}

// ---------------------------------------------------------------- submit description

/** Tokenizes the new (double-quoted) argument/environment syntax: 'x y' groups, '' and "" escape. */
function splitNewSyntax(value) {
  const s = value.slice(1, -1);
  const out = [];
  let cur = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' && s[i + 1] === '"') {
      cur = (cur || '') + '"';
      i++;
    } else if (c === "'") {
      cur = cur || '';
      for (i++; i < s.length; i++) {
        if (s[i] === "'" && s[i + 1] === "'") {
          cur += "'";
          i++;
        } else if (s[i] === "'") break;
        else cur += s[i];
      }
    } else if (c === ' ' || c === '\t') {
      if (cur !== null) out.push(cur);
      cur = null;
    } else cur = (cur || '') + c;
  }
  if (cur !== null) out.push(cur);
  return out;
}

function parseEnvironment(value) {
  const env = {};
  const v = value.trim();
  const items = v.startsWith('"') && v.endsWith('"') ? splitNewSyntax(v) : v.split(';').filter(Boolean);
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq > 0) env[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return env;
}

function parseArguments(value) {
  const v = value.trim();
  if (v.startsWith('"') && v.endsWith('"')) return splitNewSyntax(v);
  return v.split(/\s+/).filter(Boolean);
}

/** A classad literal from a `+Attr = value` line: strings, numbers, booleans; else the text. */
function literal(text) {
  const t = text.trim();
  if (/^".*"$/.test(t)) return t.slice(1, -1).replace(/\\"/g, '"');
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (/^true$/i.test(t)) return true;
  if (/^false$/i.test(t)) return false;
  return t;
}

function megabytes(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$/i.exec(String(text));
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] || 'M').toUpperCase();
  return Math.ceil(unit === 'K' ? n / 1024 : unit === 'M' ? n : unit === 'G' ? n * 1024 : n * 1024 * 1024);
}

/**
 * Reads a submit description: `key = value` lines (keys case-insensitive), `+Attr`/`MY.Attr`,
 * comments, `\` continuations and queue statements (`queue`, `queue N`, `queue var in (a, b)`
 * over one or several lines). Answers the commands and the list of procs' macro sets.
 */
function parseSubmit(text) {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const cmds = [];
  const queues = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) continue;
    const q = /^queue\b(.*)$/i.exec(line);
    if (q) {
      let spec = q[1].trim();
      if (/\(\s*$/.test(spec) || (spec.includes('(') && !spec.includes(')'))) {
        while (++i < lines.length && !lines[i].includes(')')) spec += ',' + lines[i].trim();
        if (i < lines.length) spec += ',' + lines[i].trim();
      }
      const snapshot = cmds.slice();
      if (!spec) queues.push({ cmds: snapshot, items: [{}] });
      else if (/^\d+$/.test(spec)) queues.push({ cmds: snapshot, items: Array.from({ length: Number(spec) }, () => ({})) });
      else {
        const m = /^([A-Za-z_][\w.]*)\s+in\s+(?:\((.*)\)|(.*))$/i.exec(spec);
        if (!m) throw new UsageError(`on Line ${i + 1} of submit file: \nsubmit: unsupported queue statement "${line}"`);
        const raw = (m[2] !== undefined ? m[2] : m[3])
          .split(/[,\s]+/)
          .map((s) => s.trim())
          .filter(Boolean);
        queues.push({ cmds: snapshot, items: raw.map((v) => ({ [m[1].toLowerCase()]: v })) });
      }
      continue;
    }
    const m = /^(\+[\w.]+|MY\.[\w.]+|[\w.]+)\s*=\s*(.*)$/i.exec(line);
    if (!m) throw new UsageError(`on Line ${i + 1} of submit file: \nsyntax error in submit file`);
    cmds.push([m[1], m[2]]);
  }
  return queues;
}

function expand(value, macros) {
  return value.replace(/\$\(([\w.]+)\)/g, (whole, name) => {
    const v = macros[name.toLowerCase()];
    return v === undefined ? '' : String(v);
  });
}

// ---------------------------------------------------------------- condor_submit

function condorSubmit(argv, terse) {
  const { opts, rest } = parseArgs(argv, ['pool', 'remote', 'name', 'append', 'a', 'batch-name']);
  const file = rest[rest.length - 1];
  checkSchedd('condor_submit', opts);
  if (!file) throw new UsageError('no submit file given (reading stdin is not simulated)');
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = e.code === 'ENOENT' ? 'No such file or directory' : e.code === 'EACCES' ? 'Permission denied' : e.code;
    process.stderr.write(`\nERROR: Failed to open command file (${why})\n`);
    return 1;
  }
  let queues;
  try {
    queues = parseSubmit(text);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`\nERROR: ${e.message}\n`);
    return 1;
  }
  const submitDir = path.dirname(path.resolve(file));
  const spool = Boolean(opts.remote || opts.spool);
  const dir = stateDir();
  const procs = [];
  for (const q of queues) {
    for (const item of q.items) {
      const macros = { ...item };
      const cmds = new Map();
      const custom = {};
      for (const [k, v] of q.cmds) {
        if (k.startsWith('+') || /^MY\./i.test(k)) custom[k.replace(/^\+|^MY\./i, '')] = v;
        else cmds.set(k.toLowerCase(), v);
      }
      procs.push({ macros, cmds, custom });
    }
  }
  if (procs.length === 0) {
    // condor_submit with no queue statement submits nothing and prints nothing with -terse.
    return 0;
  }
  // Validate before allocating a cluster, as condor_submit does.
  for (const p of procs) {
    const exe = p.cmds.get('executable');
    if (!exe) {
      process.stderr.write("\nERROR: No 'executable' parameter was provided\n");
      return 1;
    }
  }
  const cluster = withLock(dir, () => {
    const counter = path.join(dir, 'next_cluster');
    let n = 1;
    try {
      n = Number(fs.readFileSync(counter, 'utf8')) || 1;
    } catch {}
    fs.writeFileSync(counter, String(n + 1));
    return n;
  });
  const qdate = now();
  const ads = [];
  for (let proc = 0; proc < procs.length; proc++) {
    const p = procs[proc];
    const macros = { ...p.macros, cluster, clusterid: cluster, process: proc, procid: proc, node: proc };
    const get = (k) => (p.cmds.has(k) ? expand(p.cmds.get(k), macros).trim() : undefined);
    const iwd = path.resolve(submitDir, get('initialdir') || '.');
    const rel = (f) => (f === undefined || f === '' ? undefined : path.resolve(iwd, f));
    const exe = rel(get('executable'));
    const transferExe = !/^(false|no)$/i.test(get('transfer_executable') || 'true');
    if (transferExe && !fs.existsSync(exe)) {
      process.stderr.write(`\nERROR: Executable file ${exe} does not exist\n`);
      return 1;
    }
    const env = get('environment') !== undefined ? parseEnvironment(get('environment')) : {};
    const getenv = get('getenv');
    const ad = {
      ClusterId: cluster,
      ProcId: proc,
      GlobalJobId: `${opts.remote || opts.name || HOST}#${cluster}.${proc}#${qdate}`,
      Owner: os.userInfo().username,
      JobUniverse: /^grid$/i.test(get('universe') || '') ? 9 : 5,
      Cmd: exe,
      Args: get('arguments') !== undefined ? parseArguments(get('arguments')).join(' ') : '',
      ArgsList: get('arguments') !== undefined ? parseArguments(get('arguments')) : [],
      Iwd: iwd,
      Out: rel(get('output')) || '/dev/null',
      Err: rel(get('error')) || '/dev/null',
      UserLog: rel(get('log')),
      EnvironmentMap: getenv && /^true$/i.test(getenv) ? { ...process.env, ...env } : env,
      Environment: Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      RequestCpus: Number(get('request_cpus') || 1),
      RequestMemory: get('request_memory') ? megabytes(get('request_memory')) : 128,
      JobStatus: spool ? 5 : 1,
      LastJobStatus: 0,
      EnteredCurrentStatus: qdate,
      QDate: qdate,
      NumJobStarts: 0,
      TransferExecutable: transferExe,
      OnExitHold: get('on_exit_hold'),
      OnExitHoldSubCode: get('on_exit_hold_subcode') !== undefined ? Number(get('on_exit_hold_subcode')) : undefined,
      KillSig: get('kill_sig') || 'SIGTERM',
    };
    if (get('grid_resource')) ad.GridResource = get('grid_resource');
    if (spool) {
      ad.HoldReason = 'Spooling input data files';
      ad.HoldReasonCode = 16;
      ad.HoldReasonSubCode = 0;
      ad.SpoolDir = path.join(dir, 'spool', `${cluster}.${proc}`);
    }
    for (const [k, v] of Object.entries(p.custom)) ad[k] = literal(expand(v, macros));
    for (const k of Object.keys(ad)) if (ad[k] === undefined) delete ad[k];
    ads.push(ad);
  }
  for (const ad of ads) {
    if (ad.SpoolDir) {
      // -remote implies -spool: the executable travels at submit time, outputs stay in the spool.
      fs.mkdirSync(ad.SpoolDir, { recursive: true });
      if (ad.TransferExecutable) {
        const copy = path.join(ad.SpoolDir, path.basename(ad.Cmd));
        fs.copyFileSync(ad.Cmd, copy);
        fs.chmodSync(copy, 0o755);
        ad.Cmd = copy;
      }
      ad.Out = ad.Out === '/dev/null' ? ad.Out : path.join(ad.SpoolDir, path.basename(ad.Out));
      ad.Err = ad.Err === '/dev/null' ? ad.Err : path.join(ad.SpoolDir, path.basename(ad.Err));
    }
    writeAd(queuePath(dir, jobId(ad)), ad);
    logEvent(ad, 0, `Job submitted from host: ${SCHEDD_ADDR}`);
    const shadow = spawn(process.execPath, [path.join(__dirname, 'shadow.cjs'), dir, jobId(ad)], {
      detached: true,
      stdio: 'ignore',
      env: process.env,
    });
    shadow.unref();
  }
  // -terse: `<cluster>.<first> - <cluster>.<last>`; otherwise the two-line human form.
  if (terse) process.stdout.write(`${cluster}.0 - ${cluster}.${ads.length - 1}\n`);
  else process.stdout.write(`Submitting job(s)${'.'.repeat(ads.length)}\n${ads.length} job(s) submitted to cluster ${cluster}.\n`);
  return 0;
}

// ---------------------------------------------------------------- condor_q / condor_history

/** The tiny constraint language the fake understands: `Attr op literal` joined by `&&`. */
function compileConstraint(text) {
  if (!text) return () => true;
  const terms = text.split('&&').map((t) => {
    const m = /^\s*\(?\s*([A-Za-z_]\w*)\s*(==|!=|=\?=|=!=|>=|<=|>|<)\s*(".*?"|-?\d+(?:\.\d+)?|true|false|undefined)\s*\)?\s*$/i.exec(t);
    if (!m) throw new UsageError(`fake HTCondor: constraint not supported by the simulator: ${text}`);
    const attr = m[1];
    const op = m[2];
    const want = m[3].toLowerCase() === 'undefined' ? undefined : literal(m[3]);
    return (ad) => {
      const key = Object.keys(ad).find((k) => k.toLowerCase() === attr.toLowerCase());
      const v = key === undefined ? undefined : ad[key];
      const eq = typeof v === 'string' && typeof want === 'string' ? v.toLowerCase() === want.toLowerCase() : v === want;
      switch (op) {
        case '==':
          return v !== undefined && eq;
        case '!=':
          return v !== undefined && !eq;
        case '=?=':
          return eq;
        case '=!=':
          return !eq;
        case '>=':
          return v >= want;
        case '<=':
          return v <= want;
        case '>':
          return v > want;
        default:
          return v < want;
      }
    };
  });
  return (ad) => terms.every((f) => f(ad));
}

const HIDDEN = new Set([
  'EnvironmentMap',
  'ArgsList',
  'SpoolDir',
  'TransferExecutable',
  'OnExitHold',
  'OnExitHoldSubCode',
  'KillSig',
  'ShadowPid',
  'JobPid',
]);

function publicAd(ad, attrs) {
  const out = {};
  if (attrs) {
    for (const a of attrs) {
      const key = Object.keys(ad).find((k) => k.toLowerCase() === a.toLowerCase());
      if (key !== undefined && !HIDDEN.has(key)) out[key] = ad[key];
    }
    return out;
  }
  for (const [k, v] of Object.entries(ad)) if (!HIDDEN.has(k)) out[k] = v;
  out.MyType = 'Job';
  out.TargetType = 'Machine';
  return out;
}

/**
 * Prints ads as condor_q -json does: an array of objects, one per line group, and NOTHING at all
 * (not `[]`) when no ad matches.
 */
function printJson(ads, attrs) {
  if (ads.length === 0) return;
  const body = ads.map((ad) => {
    const entries = Object.entries(publicAd(ad, attrs)).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    return '{\n' + entries.join(',\n') + '\n}';
  });
  process.stdout.write('[\n' + body.join(',\n') + '\n]\n');
}

/** `-af[:j...] A B C`: values separated by spaces, strings unquoted, `undefined` for missing. */
function printAutoformat(ads, flags, attrs) {
  for (const ad of ads) {
    const vals = attrs.map((a) => {
      const key = Object.keys(ad).find((k) => k.toLowerCase() === a.toLowerCase());
      const v = key === undefined ? undefined : ad[key];
      return v === undefined ? 'undefined' : String(v);
    });
    process.stdout.write((flags.includes('j') ? jobId(ad) + ' ' : '') + vals.join(' ') + '\n');
  }
}

function parseQueryArgs(argv) {
  const opts = {};
  const ids = [];
  let af = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-(af|autoformat)(:|$)/.test(a)) {
      af = { flags: a.split(':')[1] || '', attrs: [] };
      while (i + 1 < argv.length && !argv[i + 1].startsWith('-')) af.attrs.push(argv[++i]);
    } else if (/^-(pool|name|constraint|attributes|limit|match|format)$/.test(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`option ${a} requires an argument`);
      if (a === '-format') i++;
      opts[a.slice(1) === 'match' ? 'limit' : a.slice(1)] = argv[++i];
    } else if (a.startsWith('-')) opts[a.slice(1)] = true;
    else ids.push(a);
  }
  return { opts, ids, af };
}

function selectAds(ads, ids, opts) {
  const constraint = compileConstraint(opts.constraint);
  const idMatch = (ad) =>
    ids.length === 0 ||
    ids.some((id) => (id.includes('.') ? id === jobId(ad) : /^\d+$/.test(id) ? Number(id) === ad.ClusterId : id === ad.Owner));
  return ads.filter((ad) => idMatch(ad) && constraint(ad));
}

function condorQuery(tool, argv) {
  const { opts, ids, af } = parseQueryArgs(argv);
  if (tool === 'condor_q' || opts.name || opts.pool) checkSchedd(tool, opts);
  const dir = stateDir();
  let ads = selectAds(listAds(dir, tool === 'condor_q' ? 'queue' : 'history'), ids, opts);
  if (tool === 'condor_history') {
    // condor_history reads the history file backwards: newest first.
    ads = ads.reverse();
    if (opts.limit) ads = ads.slice(0, Number(opts.limit));
  }
  const attrs = opts.attributes
    ? opts.attributes
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
  if (opts.json) printJson(ads, attrs);
  else if (af) printAutoformat(ads, af.flags, af.attrs);
  else throw new UsageError(`fake HTCondor: only -json and -af output are simulated by ${tool}`);
  return 0;
}

// ---------------------------------------------------------------- condor_rm

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {}
}

function condorRm(argv) {
  const { opts, rest } = parseArgs(argv, ['pool', 'name', 'constraint', 'reason']);
  checkSchedd('condor_rm', opts);
  if (rest.length === 0 && !opts.constraint && !opts.all) throw new UsageError('no job ids given');
  const dir = stateDir();
  let code = 0;
  withLock(dir, () => {
    const queued = listAds(dir, 'queue');
    if (opts.all) rest.push(...new Set(queued.map((ad) => String(ad.ClusterId))));
    for (const id of rest) {
      const targets = id.includes('.') ? queued.filter((ad) => jobId(ad) === id) : queued.filter((ad) => String(ad.ClusterId) === id);
      if (targets.length === 0) {
        process.stderr.write(id.includes('.') ? `Job ${id} not found\n` : `Couldn't find/remove all jobs in cluster ${id}\n`);
        code = 1;
        continue;
      }
      for (const ad of targets) {
        const t = now();
        ad.LastJobStatus = ad.JobStatus;
        ad.JobStatus = 3;
        ad.EnteredCurrentStatus = t;
        ad.RemoveReason = opts.reason ? String(opts.reason) : `via condor_rm (by user ${os.userInfo().username})`;
        if (ad.JobPid) killGroup(ad.JobPid, ad.KillSig && ad.KillSig.startsWith('SIG') ? ad.KillSig : 'SIGTERM');
        logEvent(ad, 9, `Job was aborted.\n\t${ad.RemoveReason}`);
        writeAd(historyPath(dir, jobId(ad)), ad);
        fs.rmSync(queuePath(dir, jobId(ad)), { force: true });
      }
      process.stdout.write(
        id.includes('.') ? `Job ${id} marked for removal\n` : `All jobs in cluster ${id} have been marked for removal\n`,
      );
    }
  });
  return code;
}

// ---------------------------------------------------------------- entry

function main(tool) {
  const argv = process.argv.slice(2);
  let code;
  try {
    if (tool === 'condor_submit')
      code = condorSubmit(
        argv.filter((a) => a !== '-terse'),
        argv.includes('-terse'),
      );
    else if (tool === 'condor_q' || tool === 'condor_history') code = condorQuery(tool, argv);
    else if (tool === 'condor_rm') code = condorRm(argv);
    else throw new UsageError('unknown tool ' + tool);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${tool}: ${e.message}\n`);
    code = 1;
  }
  process.exitCode = code;
}

module.exports = { main, stateDir, withLock, readAd, writeAd, queuePath, historyPath, logEvent, jobId, now, killGroup, sleepSync };
