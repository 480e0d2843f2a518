/**
 * Quotas and usage, and the fair shares behind them (routes: `services/plugins/usage.ts`).
 *
 * - Usage: per (VO, group) and per user, jobs waiting and running now, CPU and normalized CPU of
 *   the finished jobs of the last day and week (accounting), and per group its share, share
 *   fraction and used fraction within the VO (db/queries/usage.ts). One statement. Users get
 *   their group's line and their own; admins and site admins everything.
 * - Shares (admins): the group shares (DIRAC's JobShare, default 1000). A change goes through
 *   `setGroupShare`, which recomputes the group's task-queue priorities in the same transaction,
 *   so the matcher sees it at once.
 */
import type { Logger } from 'pino';
import type { Principal } from '../../core/identity.js';
import { DEFAULT_GROUP_SHARE, listGroupShares, setGroupShare, usageReport } from '../../db/index.js';
import type { SetShareRequest, Share, ShareList, Usage } from '../../api/index.js';
import type { ServiceContext } from '../context.js';

const DAY_MS = 86_400_000;

/** The usage of the last day and week: everything for admins and site admins, a user's group and themselves for a user. */
export async function getUsage(ctx: ServiceContext, p: Principal): Promise<Usage> {
  const now = ctx.clock().getTime();
  const daySince = new Date(now - DAY_MS);
  const weekSince = new Date(now - 7 * DAY_MS);
  if (p.role !== 'user') {
    return {
      daySince: daySince.toISOString(),
      weekSince: weekSince.toISOString(),
      defaultShare: DEFAULT_GROUP_SHARE,
      ...(await usageReport(ctx.handle, { daySince, weekSince })),
    };
  }
  // The whole VO is read (fractions are per VO); the user gets their group and themselves.
  const report = await usageReport(ctx.handle, { daySince, weekSince, vo: p.vo });
  return {
    daySince: daySince.toISOString(),
    weekSince: weekSince.toISOString(),
    defaultShare: DEFAULT_GROUP_SHARE,
    groups: report.groups.filter((g) => g.group === p.group),
    users: report.users.filter((u) => u.user === p.user && u.vo === p.vo),
  };
}

/** The share of every group that has one set or ever had jobs. */
export async function listShares(ctx: ServiceContext): Promise<ShareList> {
  return {
    defaultShare: DEFAULT_GROUP_SHARE,
    shares: (await listGroupShares(ctx.handle)).map((s) => ({ vo: s.vo, group: s.ownerGroup, share: s.share, configured: s.configured })),
  };
}

/** Sets a group's share; its task-queue priorities are recomputed in the same transaction. */
export async function setShare(
  ctx: ServiceContext,
  p: Principal,
  input: { vo: string; group: string } & SetShareRequest,
  log?: Pick<Logger, 'info'>,
): Promise<Share> {
  const { vo, group, share } = input;
  await setGroupShare(ctx.handle, vo, group, share);
  log?.info({ vo, group, share, by: p.user }, 'group share set');
  return { vo, group, share, configured: true };
}
