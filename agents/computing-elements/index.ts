/**
 * The computing elements of this process: one driver per registered CE, built from its type and
 * settings on first use, rebuilt when a site admin changes its settings (`wms site apply`), and
 * closed at the end. The local CE is handed over ready-made (it owns this machine's slots).
 *
 * Drivers are looked up by the site director (which also refreshes what is known from the
 * registry every tick) and by the pilot-status agent (which only asks: a CE not seen yet is
 * skipped until the next tick).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createHtcondorComputingElement } from './htcondor.js';
import { createOpenNebulaComputingElement } from './opennebula.js';
import { resolveSecret } from './secrets.js';
import { createSlurmComputingElement } from './slurm.js';
import type { ComputingElement, DriverOptions } from './types.js';

export type DriverFactory = (o: DriverOptions) => ComputingElement;

/** The driver of each remote CE type (`local` is the LocalComputingElement itself). */
export const DRIVER_FACTORIES: Readonly<Record<string, DriverFactory>> = {
  slurm: (o) => createSlurmComputingElement(o),
  htcondor: (o) => createHtcondorComputingElement(o),
  opennebula: (o) => createOpenNebulaComputingElement(o),
};

export interface CeRef {
  type: string;
  name: string;
  settings: Readonly<Record<string, unknown>>;
}

export class ComputingElements {
  private readonly drivers = new Map<string, { key: string; type: string; driver: ComputingElement }>();

  constructor(
    private readonly o: {
      /** Each driver gets `<workDir>/<ce name>`. */
      workDir: string;
      /** The local CE (pilots as processes of this machine) and its name, when this process serves it. */
      local?: { name: string; driver: ComputingElement } | null;
      /** Extra environment for the drivers' commands (tests put fakes first on PATH). */
      env?: Readonly<Record<string, string>>;
      factories?: Readonly<Record<string, DriverFactory>>;
    },
  ) {}

  /** The driver of `ce`, built (or rebuilt, when its settings changed) now; null for an unknown type. */
  driverFor(ce: CeRef): ComputingElement | null {
    if (ce.type === 'local') return this.o.local && this.o.local.name === ce.name ? this.o.local.driver : null;
    const factory = (this.o.factories ?? DRIVER_FACTORIES)[ce.type];
    if (!factory) return null;
    const key = createHash('sha256')
      .update(JSON.stringify([ce.type, ce.settings]))
      .digest('hex');
    const known = this.drivers.get(ce.name);
    if (known && known.key === key) return known.driver;
    if (known) void known.driver.close().catch(() => undefined);
    const driver = factory({
      ce: ce.name,
      settings: ce.settings,
      workDir: join(this.o.workDir, ce.name.replace(/[^A-Za-z0-9._-]/g, '_')),
      // The drivers name their CE in `what` already.
      secret: (ref, what) => resolveSecret(ref, what),
      ...(this.o.env ? { env: this.o.env } : {}),
    });
    this.drivers.set(ce.name, { key, type: ce.type, driver });
    return driver;
  }

  /** The driver already built for a CE (by type and name), or null: for the pilot-status agent. */
  known(type: string, name: string): ComputingElement | null {
    if (type === 'local') return this.o.local && this.o.local.name === name ? this.o.local.driver : null;
    const d = this.drivers.get(name);
    return d && d.type === type ? d.driver : null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.drivers.values()].map((d) => d.driver.close().catch(() => undefined)));
    this.drivers.clear();
  }
}
