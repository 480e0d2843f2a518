/**
 * What every plugin gets: the database, the frozen config, the clock, the token signer and the
 * sandbox store. Built once by `buildApp()` and passed to each plugin as its options.
 */
import type { EventEmitter } from 'node:events';
import type { ServiceConfig } from '../core/config.js';
import type { DbHandle } from '../db/index.js';
import type { Metrics } from './metrics.js';
import type { SandboxStore } from './sandbox-store.js';
import type { TokenSigner } from './token-signer.js';

export interface ServiceContext {
  handle: DbHandle;
  config: Readonly<ServiceConfig>;
  clock: () => Date;
  /** The signer, loaded from the database once (memoized; awaited on `ready`). */
  signer: () => Promise<TokenSigner>;
  store: SandboxStore;
  /** In-process events: `jobs-changed` `{ action, ids }` after kill, reschedule, delete. */
  events: EventEmitter;
  /** The pilot bundle served to wrappers, loaded on first use; null when not built. */
  pilotBundle: () => Promise<PilotBundle | null>;
  /** This process's Prometheus counters and histogram (`/metrics`). */
  metrics: Metrics;
}

/** `pilot.tar.gz` (holding `pilot.mjs`) and its SHA-256. */
export interface PilotBundle {
  bytes: Buffer;
  sha256: string;
}

/** Plugin options: the context, under one key. */
export interface PluginOptions {
  ctx: ServiceContext;
}
