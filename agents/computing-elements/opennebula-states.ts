/**
 * OpenNebula VM states read as pilot states (pure; OpenNebula's VM STATE and LCM_STATE codes).
 *
 * A VM has a `STATE` and, only while `STATE` is 3 ACTIVE, a meaningful `LCM_STATE` (else 0).
 * A pilot runs inside the VM, so the VM's life bounds the pilot's:
 *
 *   INIT(0) ──> PENDING(1) / HOLD(2) / CLONING(10)         Submitted / Waiting: not yet booted
 *          ──> ACTIVE(3): PROLOG, BOOT, …                   Waiting: being placed and booted
 *                         RUNNING, MIGRATE, HOTPLUG, …      Running: the guest is up, the pilot runs
 *                         SHUTDOWN, EPILOG, CLEANUP, …      Running: on its way out (no free slot yet)
 *                         UNKNOWN                           Unknown: the host is not monitored
 *                         *_FAILURE                         Failed (Aborted when it never booted)
 *          ──> POWEROFF(8)                                  Done: the guest shut itself down at the
 *                                                            pilot's end; resources still held
 *          ──> STOPPED(4) / SUSPENDED(5) / UNDEPLOYED(9)    Failed: the guest is not running and
 *                                                            nobody here asked for that
 *          ──> DONE(6)                                      Deleted: terminated, resources freed
 *          CLONING_FAILURE(11)                              Aborted: the disk copy failed
 *
 * DIRAC's cloud CE reads only STATE (4 and 8 Done, everything else Running), so a
 * failed or terminated VM looks Running to it forever; here every final VM state is final.
 * Failures are Aborted when the pilot cannot have started (the VM never booted: PROLOG_FAILURE,
 * BOOT_FAILURE, CLONING_FAILURE), Failed otherwise.
 *
 * `vmReapReason` says which VMs the CE must terminate: POWEROFF, STOPPED, SUSPENDED, UNDEPLOYED,
 * every failure state, and any VM alive longer than the CE's maximum lifetime. DONE VMs hold
 * nothing any more (terminating one is a no-op), so they are never reaped. Codes with holes
 * (STATE 7; LCM 13, 14, 58) are absent on purpose: do not index arrays by code.
 */
import type { PilotBackendStatus } from './types.js';

export const VM_STATE_NAMES: Readonly<Record<number, string>> = {
  0: 'INIT',
  1: 'PENDING',
  2: 'HOLD',
  3: 'ACTIVE',
  4: 'STOPPED',
  5: 'SUSPENDED',
  6: 'DONE',
  8: 'POWEROFF',
  9: 'UNDEPLOYED',
  10: 'CLONING',
  11: 'CLONING_FAILURE',
};

export const LCM_STATE_NAMES: Readonly<Record<number, string>> = {
  0: 'LCM_INIT',
  1: 'PROLOG',
  2: 'BOOT',
  3: 'RUNNING',
  4: 'MIGRATE',
  5: 'SAVE_STOP',
  6: 'SAVE_SUSPEND',
  7: 'SAVE_MIGRATE',
  8: 'PROLOG_MIGRATE',
  9: 'PROLOG_RESUME',
  10: 'EPILOG_STOP',
  11: 'EPILOG',
  12: 'SHUTDOWN',
  15: 'CLEANUP_RESUBMIT',
  16: 'UNKNOWN',
  17: 'HOTPLUG',
  18: 'SHUTDOWN_POWEROFF',
  19: 'BOOT_UNKNOWN',
  20: 'BOOT_POWEROFF',
  21: 'BOOT_SUSPENDED',
  22: 'BOOT_STOPPED',
  23: 'CLEANUP_DELETE',
  24: 'HOTPLUG_SNAPSHOT',
  25: 'HOTPLUG_NIC',
  26: 'HOTPLUG_SAVEAS',
  27: 'HOTPLUG_SAVEAS_POWEROFF',
  28: 'HOTPLUG_SAVEAS_SUSPENDED',
  29: 'SHUTDOWN_UNDEPLOY',
  30: 'EPILOG_UNDEPLOY',
  31: 'PROLOG_UNDEPLOY',
  32: 'BOOT_UNDEPLOY',
  33: 'HOTPLUG_PROLOG_POWEROFF',
  34: 'HOTPLUG_EPILOG_POWEROFF',
  35: 'BOOT_MIGRATE',
  36: 'BOOT_FAILURE',
  37: 'BOOT_MIGRATE_FAILURE',
  38: 'PROLOG_MIGRATE_FAILURE',
  39: 'PROLOG_FAILURE',
  40: 'EPILOG_FAILURE',
  41: 'EPILOG_STOP_FAILURE',
  42: 'EPILOG_UNDEPLOY_FAILURE',
  43: 'PROLOG_MIGRATE_POWEROFF',
  44: 'PROLOG_MIGRATE_POWEROFF_FAILURE',
  45: 'PROLOG_MIGRATE_SUSPEND',
  46: 'PROLOG_MIGRATE_SUSPEND_FAILURE',
  47: 'BOOT_UNDEPLOY_FAILURE',
  48: 'BOOT_STOPPED_FAILURE',
  49: 'PROLOG_RESUME_FAILURE',
  50: 'PROLOG_UNDEPLOY_FAILURE',
  51: 'DISK_SNAPSHOT_POWEROFF',
  52: 'DISK_SNAPSHOT_REVERT_POWEROFF',
  53: 'DISK_SNAPSHOT_DELETE_POWEROFF',
  54: 'DISK_SNAPSHOT_SUSPENDED',
  55: 'DISK_SNAPSHOT_REVERT_SUSPENDED',
  56: 'DISK_SNAPSHOT_DELETE_SUSPENDED',
  57: 'DISK_SNAPSHOT',
  59: 'DISK_SNAPSHOT_DELETE',
  60: 'PROLOG_MIGRATE_UNKNOWN',
  61: 'PROLOG_MIGRATE_UNKNOWN_FAILURE',
  62: 'DISK_RESIZE',
  63: 'DISK_RESIZE_POWEROFF',
  64: 'DISK_RESIZE_UNDEPLOYED',
  65: 'HOTPLUG_NIC_POWEROFF',
  66: 'HOTPLUG_RESIZE',
  67: 'HOTPLUG_SAVEAS_UNDEPLOYED',
  68: 'HOTPLUG_SAVEAS_STOPPED',
  69: 'BACKUP',
  70: 'BACKUP_POWEROFF',
  71: 'RESTORE',
};

export const VM_STATE = {
  INIT: 0,
  PENDING: 1,
  HOLD: 2,
  ACTIVE: 3,
  STOPPED: 4,
  SUSPENDED: 5,
  DONE: 6,
  POWEROFF: 8,
  UNDEPLOYED: 9,
  CLONING: 10,
  CLONING_FAILURE: 11,
} as const;
export const LCM_STATE = {
  LCM_INIT: 0,
  PROLOG: 1,
  BOOT: 2,
  RUNNING: 3,
  UNKNOWN: 16,
  BOOT_FAILURE: 36,
  PROLOG_FAILURE: 39,
  EPILOG_FAILURE: 40,
} as const;

/** ACTIVE sub-states before the guest runs: being placed, copied, booted or resumed. */
const LCM_STARTING = new Set([0, 1, 2, 9, 15, 19, 20, 21, 22, 31, 32, 35]);
/** ACTIVE sub-states on the way out: shutdown, epilog, cleanup. */
const LCM_ENDING = new Set([10, 11, 12, 18, 23, 29, 30]);
/** Failures; the VM needs `terminate-hard`. */
const LCM_FAILURES = new Set([36, 37, 38, 39, 40, 41, 42, 44, 46, 47, 48, 49, 50, 61]);
/** Failures before the guest ever booted: the pilot cannot have started. */
const LCM_FAILURES_BEFORE_BOOT = new Set([36, 39]);

export function vmStateName(state: number): string {
  return VM_STATE_NAMES[state] ?? `STATE_${state}`;
}
export function lcmStateName(lcm: number): string {
  return LCM_STATE_NAMES[lcm] ?? `LCM_${lcm}`;
}

/** "ACTIVE/RUNNING", "POWEROFF", as OpenNebula's CLI would say. */
export function vmStateLabel(state: number, lcm: number): string {
  return state === VM_STATE.ACTIVE ? `ACTIVE/${lcmStateName(lcm)}` : vmStateName(state);
}

export function isLcmFailure(lcm: number): boolean {
  return LCM_FAILURES.has(lcm);
}

/** The pilot state a VM in `state`/`lcm` stands for, with a reason for site admins. */
export function pilotStatusOfVm(state: number, lcm: number): PilotBackendStatus {
  const label = `VM ${vmStateLabel(state, lcm)}`;
  switch (state) {
    case VM_STATE.INIT:
      return { status: 'Submitted', reason: `${label}: just created` };
    case VM_STATE.PENDING:
      return { status: 'Waiting', reason: `${label}: waiting for the scheduler` };
    case VM_STATE.HOLD:
      return { status: 'Waiting', reason: `${label}: held, not scheduled until released` };
    case VM_STATE.CLONING:
      return { status: 'Waiting', reason: `${label}: waiting for its disk images` };
    case VM_STATE.CLONING_FAILURE:
      return { status: 'Aborted', reason: `${label}: copying its disk images failed; the pilot never started` };
    case VM_STATE.STOPPED:
    case VM_STATE.SUSPENDED:
    case VM_STATE.UNDEPLOYED:
      return { status: 'Failed', reason: `${label}: the guest is not running any more` };
    case VM_STATE.POWEROFF:
      return { status: 'Done', reason: `${label}: the guest powered itself off at the pilot's end` };
    case VM_STATE.DONE:
      return { status: 'Deleted', reason: `${label}: terminated` };
    case VM_STATE.ACTIVE:
      if (lcm === LCM_STATE.RUNNING) return { status: 'Running', reason: label };
      if (lcm === LCM_STATE.UNKNOWN) return { status: 'Unknown', reason: `${label}: its host is not monitored` };
      if (LCM_FAILURES_BEFORE_BOOT.has(lcm)) return { status: 'Aborted', reason: `${label}: the VM never booted; the pilot never started` };
      if (LCM_FAILURES.has(lcm)) return { status: 'Failed', reason: `${label}: the VM failed` };
      if (LCM_STARTING.has(lcm)) return { status: 'Waiting', reason: `${label}: starting` };
      if (LCM_ENDING.has(lcm)) return { status: 'Running', reason: `${label}: shutting down` };
      if (lcm in LCM_STATE_NAMES) return { status: 'Running', reason: label }; // migrate, hotplug, snapshot, backup
      return { status: 'Unknown', reason: `${label}: unknown LCM_STATE` };
    default:
      return { status: 'Unknown', reason: `${label}: unknown STATE` };
  }
}

export interface VmLife {
  state: number;
  lcmState: number;
  /** STIME: start, epoch seconds. */
  startTime: number;
}

/**
 * Why the CE must terminate this VM now, or null: a POWEROFF/STOPPED/SUSPENDED/UNDEPLOYED/failed
 * VM holds resources for nothing, and a VM older than `maxLifetimeSeconds` has outlived any pilot.
 * Never a DONE VM (already freed).
 */
export function vmReapReason(vm: VmLife, nowSeconds: number, maxLifetimeSeconds: number): string | null {
  const label = vmStateLabel(vm.state, vm.lcmState);
  if (vm.state === VM_STATE.DONE) return null;
  if (vm.state === VM_STATE.POWEROFF) return `VM ${label}: powered off`;
  if (vm.state === VM_STATE.STOPPED || vm.state === VM_STATE.SUSPENDED || vm.state === VM_STATE.UNDEPLOYED) {
    return `VM ${label}: not running`;
  }
  if (vm.state === VM_STATE.CLONING_FAILURE || (vm.state === VM_STATE.ACTIVE && LCM_FAILURES.has(vm.lcmState))) {
    return `VM ${label}: failed`;
  }
  if (vm.startTime > 0 && nowSeconds - vm.startTime > maxLifetimeSeconds) {
    return `VM older than the maximum lifetime (${nowSeconds - vm.startTime} s > ${maxLifetimeSeconds} s)`;
  }
  return null;
}
