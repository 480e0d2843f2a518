/**
 * One interface for every computing element (local processes, SLURM, HTCondor, OpenNebula):
 * the site director submits pilots through it and the pilot-status agent asks it what became
 * of them. A driver never touches the database.
 *
 * Pilot references are like DIRAC's pilot references: `local://<ce>/<pid>`,
 * `slurm://<ce>/<jobid>`, `htcondorce://<ce>/<cluster>.<proc>`, `cloud://<ce>/<vm-id>`.
 * The stamp (32 hex) is the pilot's identity known before submission; the reference is the
 * backend's name for it, known after.
 */
import type { PilotState } from '../../core/pilot-states.js';

/** One pilot to submit: its stamp and the wrapper script that starts it. */
export interface PilotSubmission {
  stamp: string;
  /** The bash wrapper (agents/pilot-wrapper.ts renders it). */
  wrapper: string;
}

/** What a CE answered for one pilot it started. */
export interface SubmittedPilot {
  stamp: string;
  reference: string;
}

/** A pilot's state as the backend sees it, with its words for it. */
export interface PilotBackendStatus {
  status: PilotState;
  /** Why, for site admins: "exit code 3", "SLURM: OUT_OF_MEMORY", "VM in FAILURE". */
  reason: string;
  exitCode?: number;
}

/** The queue a submission goes to (from the registry). */
export interface CeQueueTarget {
  site: string;
  ce: string;
  queue: string;
  processors: number;
  ramMb: number;
  timeLimitSeconds: number;
  settings: Readonly<Record<string, unknown>>;
}

export interface ComputingElement {
  readonly type: string;
  /**
   * Starts the pilots; answers the ones started (maybe fewer than asked when the backend
   * refuses part way; the rest are reported through `failed`).
   */
  submit(
    queue: CeQueueTarget,
    pilots: readonly PilotSubmission[],
  ): Promise<{ submitted: SubmittedPilot[]; failed: { stamp: string; reason: string }[] }>;
  /** The status of many pilots by reference; references the backend does not know are absent. */
  status(references: readonly string[]): Promise<Map<string, PilotBackendStatus>>;
  /** Stops pilots (best effort; unknown references are ignored). */
  cancel(references: readonly string[]): Promise<void>;
  /** Removes what the backend keeps for finished pilots (files, VMs). */
  cleanup(references: readonly string[]): Promise<void>;
  /** Pilots this CE can start now (free slots), or null when it cannot tell. */
  availableSlots(queue: CeQueueTarget): Promise<number | null>;
  /** Stops whatever the driver runs itself (timers, child processes of a local CE). */
  close(): Promise<void>;
}

/** A secret in a site config: the name of an environment variable, or a file; never the value. */
export type SecretRef = { env: string } | { file: string };

/** What every driver is built from (agents/computing-elements/index.ts picks the driver by type). */
export interface DriverOptions {
  /** The CE's name in the registry (used in pilot references). */
  ce: string;
  /** The CE's backend settings from the registry (secrets as SecretRef). */
  settings: Readonly<Record<string, unknown>>;
  /** A local directory the driver may use (wrappers, submit files, logs), created on demand. */
  workDir: string;
  /** Resolves a SecretRef to its value; throws naming `what` when it cannot. */
  secret: (ref: unknown, what: string) => Promise<string>;
  /** Extra environment for the commands the driver runs (tests put fakes first on PATH). */
  env?: Readonly<Record<string, string>>;
}
