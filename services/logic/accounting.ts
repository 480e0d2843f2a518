/**
 * Accounting reports (route: `services/plugins/accounting.ts`): the totals of the accounting
 * records (one per finished job, written by the accounting agent) ended within `since` (default
 * 7d), one row per key, biggest normalized CPU first.
 *
 * Who: users see only their own records (their name in their VO); admins and site admins see all.
 */
import { parseDuration } from '../../core/config.js';
import { WmsError } from '../../core/errors.js';
import type { Principal } from '../../core/identity.js';
import { ACCOUNTING_GROUPINGS, accountingReport } from '../../db/index.js';
import type { AccountingGrouping, AccountingReport } from '../../api/index.js';
import type { ServiceContext } from '../context.js';

const DEFAULT_SINCE = '7d';

/** The groupings the database reports are those the API declares (a compile-time check). */
const GROUPINGS: readonly AccountingGrouping[] = ACCOUNTING_GROUPINGS;
void GROUPINGS;

/** The accounting of the jobs ended within `since` (a duration such as 30m, 12h, 7d, 2w), grouped `by`. */
export async function getAccounting(
  ctx: ServiceContext,
  p: Principal,
  input: { by: AccountingGrouping; since?: string },
): Promise<AccountingReport> {
  const sinceText = input.since ?? DEFAULT_SINCE;
  const seconds = parseDuration(sinceText);
  if (seconds === null) {
    throw new WmsError('WMS_VALIDATION', `since: "${sinceText}" is not a duration (e.g. 30m, 12h, 7d, 2w)`);
  }
  const since = new Date(ctx.clock().getTime() - seconds * 1000);
  const rows = await accountingReport(ctx.handle, {
    by: input.by,
    since,
    // A user is the pair (VO, name): only their own records, of their VO.
    ...(p.role === 'user' ? { owner: p.user, vo: p.vo } : {}),
  });
  return { by: input.by, since: since.toISOString(), rows };
}
