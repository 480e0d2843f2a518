/** `wms server agents --only` knows every agent the runner runs (accounting was once refused). */
import { expect, it } from 'vitest';
import { standardAgents } from '../../agents/runner.js';
import { AGENT_NAMES } from '../../cli/commands/server.js';
import { DEFAULT_SERVICE_CONFIG } from '../../core/config.js';

it('lists the site director and every standard agent, accounting included', () => {
  const standard = standardAgents(DEFAULT_SERVICE_CONFIG, { drivers: () => null }).map((a) => a.name);
  expect([...AGENT_NAMES].sort()).toEqual(['site-director', ...standard].sort());
  expect(AGENT_NAMES).toContain('accounting');
});
