/**
 * The machine checks of a registry document (`wms site apply --check`, and the warnings of an
 * apply): for each computing element, what the agents would meet on this machine, checked by
 * the drivers' own code (agents/computing-elements/machine-checks.ts): secrets present, the
 * backend's commands installed, the endpoint answering. The one file of `wms site` that reaches
 * agents/ (a composition-root file, as cli/server-system.ts is).
 */
import { ceMachineProblems } from '../agents/computing-elements/machine-checks.js';
import type { SiteRegistry } from '../core/site-config.js';

/** Every machine problem of a valid document's computing elements, one line each, in document order. */
export async function registryMachineProblems(doc: SiteRegistry, env: NodeJS.ProcessEnv, timeoutMs?: number): Promise<string[]> {
  const ces = doc.sites.flatMap((s) => s.computingElements);
  const found = await Promise.all(
    ces.map((ce) =>
      ceMachineProblems({ name: ce.name, type: ce.type, settings: ce.settings ?? {} }, { env, ...(timeoutMs ? { timeoutMs } : {}) }),
    ),
  );
  return found.flat();
}
