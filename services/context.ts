/**
 * What every plugin gets: the database, the frozen config, the clock, the token signer and the
 * sandbox store. Built once by `buildApp()` and passed to each plugin as its options.
 */
import type { ServiceConfig } from '../core/config.js';
import type { DbHandle } from '../db/index.js';
import type { SandboxStore } from './sandbox-store.js';
import type { TokenSigner } from './token-signer.js';

export interface ServiceContext {
  handle: DbHandle;
  config: Readonly<ServiceConfig>;
  clock: () => Date;
  /** The signer, loaded from the database once (memoized; awaited on `ready`). */
  signer: () => Promise<TokenSigner>;
  store: SandboxStore;
}

/** Plugin options: the context, under one key. */
export interface PluginOptions {
  ctx: ServiceContext;
}
