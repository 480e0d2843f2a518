/**
 * check-environment: describe the worker node the pilot landed on and refuse it when the work
 * directory lacks free disk (DIRAC's CheckWorkerNode).
 *
 * The report (OS, kernel, CPU, cores, memory, GPUs, disk, batch system) goes to the server at
 * registration and is what a site admin reads when asking "where did this pilot run?".
 *
 * Speed and hangs: the pilot should start in under 2 s, and no probe may hold it for more than
 * about 5 s. CPU, memory and GPUs come from systeminformation, each raced against a deadline and
 * replaced by `node:os` figures when late or failing. A deadline cannot stop a synchronous call,
 * though, and systeminformation makes some: `osInfo()` runs `hostname -f` (stalls for the DNS
 * timeout on a node whose name does not resolve) and `graphics()` runs `nvidia-smi` (hangs for
 * minutes when a GPU driver is wedged). So the OS name is read from /etc/os-release, and
 * `graphics()` is only called on nodes whose PCI bus shows a GPU vendor, after an asynchronous,
 * killable `nvidia-smi -L` has answered when the GPU is NVIDIA's.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import si from 'systeminformation';
import type { EnvironmentReport } from '../../core/pilot-protocol.js';
import { PILOT_COMMAND_EXIT_CODES, PilotCommandError } from './command-error.js';

export interface CheckEnvironmentOptions {
  /** The pilot's work directory (chosen by the wrapper on local disk). */
  workDir: string;
  /** File system type of the work dir as the wrapper measured it (`stat -f -c %T`); '' if unknown. */
  fsType: string;
  /** Refuse the node below this many MB free in the work dir. */
  minDiskMb: number;
  /** The pilot's environment (batch system variables). */
  env: NodeJS.ProcessEnv;
  /** Longest wait for one systeminformation probe (ms); default 4000. */
  probeTimeoutMs?: number;
}

/** What check-environment adds to the protocol's report. */
export interface NodeReport extends EnvironmentReport {
  /** Cores this process may run on (CPU affinity, e.g. a SLURM allocation). */
  allowedCores: number;
  /** Probes that failed or were late, and what replaced them. */
  notes: string[];
}

const MB = 1024 * 1024;
const DEFAULT_PROBE_TIMEOUT_MS = 4000;
const NVIDIA_SMI_TIMEOUT_MS = 3000;

function envError(reason: string): PilotCommandError {
  return new PilotCommandError('check-environment', reason, PILOT_COMMAND_EXIT_CODES['check-environment']);
}

/**
 * Describes the node and checks the work dir's free disk. Throws a PilotCommandError (exit code
 * 20) when free disk is below `minDiskMb` or cannot be read. Never throws for a failed probe:
 * it falls back to `node:os` and says so in `notes`.
 */
export async function checkEnvironment(opts: CheckEnvironmentOptions): Promise<NodeReport> {
  const timeoutMs = opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const notes: string[] = [];
  const [disk, cpu, memoryMb, gpus] = await Promise.all([
    diskOf(opts.workDir),
    cpuOf(timeoutMs, notes),
    memoryOf(timeoutMs, notes),
    gpusOf(timeoutMs, notes),
  ]);
  const fsType = opts.fsType.trim() || fsTypeName(disk.type);
  if (disk.freeMb < opts.minDiskMb) {
    throw envError(`disk: ${disk.freeMb} MB free in ${opts.workDir} (${fsType}), need ${opts.minDiskMb} MB`);
  }
  const batch = detectBatchSystem(opts.env);
  return {
    hostname: os.hostname(),
    os: osName(),
    kernel: os.release(),
    cpuModel: cpu.model,
    cores: cpu.cores,
    allowedCores: os.availableParallelism(),
    memoryMb,
    workDir: opts.workDir,
    fsType,
    diskFreeMb: disk.freeMb,
    gpus,
    nodeVersion: process.version,
    batchSystem: batch.batchSystem,
    batchJobId: batch.batchSystem === 'htcondor' ? condorJobIdFromAd(opts.env) : batch.batchJobId,
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// Disk

/** Free MB for an unprivileged user in `dir`, and the file system's magic number. */
async function diskOf(dir: string): Promise<{ freeMb: number; type: number }> {
  try {
    const s = await statfs(dir);
    return { freeMb: Math.floor((s.bavail * s.bsize) / MB), type: s.type };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw envError(`disk: cannot read the free space of ${dir} (${code})`);
  }
}

/** statfs magic numbers of the file systems a work dir is likely to sit on. */
const FS_MAGIC: Record<number, string> = {
  0xef53: 'ext2/3/4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x6969: 'nfs',
  0x00c36400: 'ceph',
  0x0bd00bd0: 'lustre',
  0x47504653: 'gpfs',
  0x65735546: 'fuseblk',
  0x2fc12fc1: 'zfs',
};

/** Names the file system when the wrapper could not (`stat -f` missing). */
function fsTypeName(magic: number): string {
  return FS_MAGIC[magic] ?? `unknown (0x${magic.toString(16)})`;
}

// ---------------------------------------------------------------------------------------------
// OS, CPU, memory

/** PRETTY_NAME of /etc/os-release ("Debian GNU/Linux 12 (bookworm)"), else what `os` knows. */
function osName(): string {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const m = /^PRETTY_NAME=(.*)$/m.exec(readFileSync(file, 'utf8'));
      if (m?.[1]) return m[1].replace(/^["']|["']$/g, '');
    } catch {
      // try the next file
    }
  }
  return `${os.type()} ${os.version()}`.trim();
}

/** Resolves to `probe`'s value, or to null when it fails or takes longer than `ms`. */
async function within<T>(ms: number, probe: () => Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
    timer.unref();
  });
  try {
    return await Promise.race([probe().catch(() => null), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function cpuOf(ms: number, notes: string[]): Promise<{ model: string; cores: number }> {
  const c = await within(ms, () => si.cpu());
  if (c && c.cores > 0) return { model: `${c.manufacturer} ${c.brand}`.trim(), cores: c.cores };
  notes.push(`cpu: systeminformation gave nothing within ${ms} ms; used node:os`);
  const cpus = os.cpus();
  return { model: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length || os.availableParallelism() };
}

async function memoryOf(ms: number, notes: string[]): Promise<number> {
  const m = await within(ms, () => si.mem());
  if (m && m.total > 0) return Math.round(m.total / MB);
  notes.push(`memory: systeminformation gave nothing within ${ms} ms; used node:os`);
  return Math.round(os.totalmem() / MB);
}

// ---------------------------------------------------------------------------------------------
// GPUs

/** PCI vendors whose display controllers are server consoles or virtual screens, not GPUs. */
const DISPLAY_ONLY_VENDOR_IDS = new Set(['1a03', '102b', '1013', '1234', '1b36', '1af4', '15ad', '80ee', '1414', '5853']);
const DISPLAY_ONLY_VENDOR_NAMES = /aspeed|matrox|cirrus|qemu|bochs|red hat|virtio|vmware|virtualbox|innotek|hyper-v|microsoft|xen/i;
const NVIDIA_VENDOR_ID = '10de';

interface PciDisplay {
  vendorId: string;
  deviceId: string;
}

/** Display-class PCI devices (class 0x03....) from sysfs; null when sysfs cannot be read. */
function pciDisplayDevices(): PciDisplay[] | null {
  const root = '/sys/bus/pci/devices';
  try {
    return readdirSync(root).flatMap((dev) => {
      const read = (f: string) => readFileSync(`${root}/${dev}/${f}`, 'utf8').trim().replace(/^0x/, '');
      return read('class').startsWith('03') ? [{ vendorId: read('vendor'), deviceId: read('device') }] : [];
    });
  } catch {
    return null;
  }
}

/** True when `nvidia-smi -L` answers in time: its driver is alive and will not hang a later call. */
function nvidiaSmiAnswers(ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['-L'], { timeout: ms, killSignal: 'SIGKILL' }, (error) => resolve(!error));
  });
}

async function gpusOf(ms: number, notes: string[]): Promise<string[]> {
  const pci = pciDisplayDevices();
  const candidates = pci?.filter((d) => !DISPLAY_ONLY_VENDOR_IDS.has(d.vendorId));
  if (candidates && candidates.length === 0) return [];
  const fromPci = () => (candidates ?? []).map((d) => `PCI ${d.vendorId}:${d.deviceId}`);
  if (candidates?.some((d) => d.vendorId === NVIDIA_VENDOR_ID) && !(await nvidiaSmiAnswers(NVIDIA_SMI_TIMEOUT_MS))) {
    notes.push(`gpus: nvidia-smi failed or did not answer within ${NVIDIA_SMI_TIMEOUT_MS} ms; GPUs listed from the PCI bus`);
    return fromPci();
  }
  const g = await within(ms, () => si.graphics());
  if (!g) {
    notes.push(`gpus: systeminformation gave nothing within ${ms} ms; GPUs listed from the PCI bus`);
    return fromPci();
  }
  return g.controllers
    .filter((c) => !DISPLAY_ONLY_VENDOR_NAMES.test(`${c.vendor} ${c.model}`))
    .map((c) => (c.name || `${c.vendor} ${c.model}`).trim())
    .filter((name) => name !== '');
}

// ---------------------------------------------------------------------------------------------
// Batch system

export interface BatchSystem {
  /** slurm, htcondor, pbs, lsf, sge, oar, local, or the CE type the wrapper declared. */
  batchSystem: string;
  batchJobId: string | null;
}

/** Variables each batch system sets in its jobs, checked in this order. */
const BATCH_MARKERS: { name: string; marker: string[]; jobId: string | null }[] = [
  { name: 'slurm', marker: ['SLURM_JOB_ID'], jobId: 'SLURM_JOB_ID' },
  { name: 'htcondor', marker: ['_CONDOR_JOB_AD', '_CONDOR_SCRATCH_DIR'], jobId: null },
  { name: 'pbs', marker: ['PBS_JOBID'], jobId: 'PBS_JOBID' },
  { name: 'lsf', marker: ['LSB_JOBID'], jobId: 'LSB_JOBID' },
  { name: 'sge', marker: ['SGE_TASK_ID'], jobId: 'JOB_ID' },
  { name: 'oar', marker: ['OAR_JOBID'], jobId: 'OAR_JOBID' },
];

/** The CE type the site director's wrapper declares, when it does. */
export const CE_TYPE_ENV = 'WMS_PILOT_CE_TYPE';

/**
 * Which batch system runs this pilot, from its environment. A wrapper that declares the `local`
 * CE wins over batch variables, because a local pilot is a child of the server and inherits
 * `SLURM_JOB_ID` when the server itself runs inside a SLURM allocation. Pure.
 */
export function detectBatchSystem(env: NodeJS.ProcessEnv): BatchSystem {
  const ceType = env[CE_TYPE_ENV]?.trim().toLowerCase() ?? '';
  if (ceType === 'local') return { batchSystem: 'local', batchJobId: null };
  for (const b of BATCH_MARKERS) {
    if (b.marker.some((v) => env[v])) return { batchSystem: b.name, batchJobId: (b.jobId && env[b.jobId]) || null };
  }
  return { batchSystem: ceType || 'local', batchJobId: null };
}

/** `ClusterId.ProcId` from HTCondor's job ad file, or null. */
function condorJobIdFromAd(env: NodeJS.ProcessEnv): string | null {
  const file = env['_CONDOR_JOB_AD'];
  if (!file) return null;
  try {
    const ad = readFileSync(file, 'utf8');
    const cluster = /^ClusterId\s*=\s*(\d+)/m.exec(ad)?.[1];
    const proc = /^ProcId\s*=\s*(\d+)/m.exec(ad)?.[1];
    return cluster ? `${cluster}.${proc ?? '0'}` : null;
  } catch {
    return null;
  }
}
