/**
 * What every plugin gets: the database, the frozen config, the clock, the token signer and the
 * sandbox store. Built once by `buildApp()` and passed to each plugin as its options.
 */
import type { EventEmitter } from 'node:events';
import type { ServiceConfig } from '../core/config.js';
import type { DbHandle, NoticeBus } from '../db/index.js';
import type { Metrics } from './metrics.js';
import type { SandboxStore } from './sandbox-store.js';
import type { TokenSigner } from './token-signer.js';

export interface ServiceContext {
  handle: DbHandle;
  config: Readonly<ServiceConfig>;
  clock: () => Date;
  /** The signer, loaded from the database once (memoized; awaited on `ready`). */
  signer: () => Promise<TokenSigner>;
  /** Sandbox bytes: in PostgreSQL, or on disk on PGlite (`sandboxStoreFor`). */
  store: SandboxStore;
  /** In-process events: `jobs-submitted` `{ ids }` (the site director's early tick), agent ticks. */
  events: EventEmitter;
  /**
   * Hints to every process on the database, this one included (db/notices.ts): kills, new work,
   * pilot and site changes. Consumers act on received notices only and re-read the database.
   */
  notices: NoticeBus;
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
