'use strict';
/*
 * The fake's per-job "shadow" (started detached by condor_submit): waits out the idle period,
 * starts the executable in its own process group with the job's environment, marks the job
 * Running, and records its end (Completed with ExitCode/ExitBySignal, or Held by on_exit_hold),
 * unless condor_rm removed it first. A missing executable puts the job on hold as the starter
 * would. Usage: node shadow.cjs <state-dir> <cluster.proc>
 */
const fs = require('node:fs');
const os = require('node:os');
const { spawn } = require('node:child_process');
const { withLock, readAd, writeAd, queuePath, historyPath, logEvent, now, sleepSync } = require('./lib.cjs');

const [dir, id] = process.argv.slice(2);
const idleMs = Number(process.env.WMS_FAKE_CONDOR_IDLE_MS ?? 300);
const slot = `slot1@${os.hostname()}`;

/** Applies fn to the queued ad under the lock; answers the ad, or null when it left the queue. */
function update(fn) {
  return withLock(dir, () => {
    const ad = readAd(queuePath(dir, id));
    if (!ad) return null;
    const keep = fn(ad);
    if (keep === false) return ad;
    writeAd(queuePath(dir, id), ad);
    return ad;
  });
}

function setStatus(ad, status) {
  ad.LastJobStatus = ad.JobStatus;
  ad.JobStatus = status;
  ad.EnteredCurrentStatus = now();
}

function hold(ad, code, subCode, reason) {
  setStatus(ad, 5);
  ad.HoldReasonCode = code;
  ad.HoldReasonSubCode = subCode;
  ad.HoldReason = reason;
  logEvent(ad, 12, `Job was held.\n\t${reason}\n\tCode ${code} Subcode ${subCode}`);
}

// -remote submissions sit Held (16, spooling input) until their input is spooled.
const first = readAd(queuePath(dir, id));
if (first && first.JobStatus === 5 && first.HoldReasonCode === 16) {
  sleepSync(Math.floor(idleMs / 2));
  update((ad) => {
    if (!(ad.JobStatus === 5 && ad.HoldReasonCode === 16)) return false;
    setStatus(ad, 1);
    delete ad.HoldReason;
    delete ad.HoldReasonCode;
    delete ad.HoldReasonSubCode;
  });
}
sleepSync(idleMs);

let outFd = null;
let errFd = null;
const started = update((ad) => {
  if (ad.JobStatus !== 1) return false;
  if (!fs.existsSync(ad.Iwd)) {
    hold(
      ad,
      14,
      2,
      `Error from ${slot}: Failed to access '${ad.Iwd}' as the job's initial working directory: (errno 2) No such file or directory`,
    );
    return;
  }
  if (!fs.existsSync(ad.Cmd)) {
    if (ad.TransferExecutable)
      hold(
        ad,
        13,
        2,
        `Error from ${slot}: SHADOW at 127.0.0.1 failed to send file(s) to <127.0.0.1:9618>: error reading from ${ad.Cmd}: (errno 2) No such file or directory; STARTER failed to receive file(s) from <127.0.0.1:9618>`,
      );
    else hold(ad, 6, 2, `Error from ${slot}: Failed to execute '${ad.Cmd}': (errno=2: 'No such file or directory')`);
    return;
  }
  try {
    outFd = fs.openSync(ad.Out, 'a');
    errFd = fs.openSync(ad.Err, 'a');
  } catch (e) {
    hold(
      ad,
      7,
      2,
      `Error from ${slot}: Failed to open '${outFd === null ? ad.Out : ad.Err}' as standard ${outFd === null ? 'output' : 'error'}: ${e.message} (errno 2)`,
    );
    return;
  }
  setStatus(ad, 2);
  ad.JobStartDate = now();
  ad.NumJobStarts = (ad.NumJobStarts || 0) + 1;
  ad.RemoteHost = slot;
  ad.ShadowPid = process.pid;
});
if (!started || started.JobStatus !== 2) process.exit(0);

// The job's environment: only what the submit description gave (getenv is off by default),
// plus what a starter adds.
const env = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  ...started.EnvironmentMap,
  _CONDOR_SCRATCH_DIR: started.Iwd,
  BATCH_SYSTEM: 'HTCondor',
};
const child = spawn(started.Cmd, started.ArgsList || [], { cwd: started.Iwd, env, detached: true, stdio: ['ignore', outFd, errFd] });
child.on('error', (e) => {
  update((ad) => {
    hold(
      ad,
      6,
      e.errno ? Math.abs(e.errno) : 0,
      `Error from ${slot}: Failed to execute '${ad.Cmd}': (errno=${Math.abs(e.errno || 0)}: '${e.message}')`,
    );
    delete ad.JobPid;
  });
  process.exit(0);
});
child.on('spawn', () => {
  update((ad) => {
    ad.JobPid = child.pid;
    logEvent(ad, 1, `Job executing on host: <127.0.0.1:9618?addrs=127.0.0.1-9618&alias=${os.hostname()}>`);
  });
});
child.on('exit', (code, signal) => {
  withLock(dir, () => {
    const ad = readAd(queuePath(dir, id));
    if (!ad) return; // removed by condor_rm: its ad is in the history already
    delete ad.JobPid;
    if (signal) {
      ad.ExitBySignal = true;
      ad.ExitSignal = os.constants.signals[signal] || 0;
      logEvent(ad, 5, `Job terminated.\n\t(0) Abnormal termination (signal ${ad.ExitSignal})`);
    } else {
      ad.ExitBySignal = false;
      ad.ExitCode = code;
      logEvent(ad, 5, `Job terminated.\n\t(1) Normal termination (return value ${code})`);
    }
    // on_exit_hold: the simulator understands `ExitCode =!= 0` / `ExitCode != 0` / true.
    const expr = ad.OnExitHold ? String(ad.OnExitHold).trim() : '';
    const holdIt = /^true$/i.test(expr) || (/^ExitCode\s*(=!=|!=)\s*0$/.test(expr) && ad.ExitCode !== 0);
    ad.CompletionDate = now();
    if (holdIt) {
      hold(ad, 3, ad.OnExitHoldSubCode || 0, `The job attribute OnExitHold expression '${expr}' evaluated to TRUE`);
      writeAd(queuePath(dir, id), ad);
      return;
    }
    setStatus(ad, 4);
    writeAd(historyPath(dir, id), ad);
    fs.rmSync(queuePath(dir, id), { force: true });
  });
});
