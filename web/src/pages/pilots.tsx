import type { PilotList } from '../../../api/index.js';
import { api } from '../api.js';
import { streamLabel, useEvents, useThrottled, LIVE_POLL_MS } from '../events.js';
import { usePolled } from '../hooks.js';
import { navigate, onLinkClick } from '../router.js';
import { PILOT_STATES } from '../../../core/pilot-states.js';
import { isRefusal, Refused } from '../roles.js';
import { CeLink, SiteLink } from '../links.js';
import { Time } from '../time.js';

const PAGE = 50;

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Pilots, newest first: filters (site, CE, status) and paging by `before` (the smallest id of
 * the page), all kept in the address. The first page is live from the `pilots` event stream.
 */
export function PilotsPage({ url }: { url: URL }) {
  const site = url.searchParams.get('site') ?? '';
  const ce = url.searchParams.get('ce') ?? '';
  const status = url.searchParams.get('status') ?? '';
  const before = Number(url.searchParams.get('before') ?? 0) || undefined;
  const go = (over: { site?: string; ce?: string; status?: string; before?: number | undefined }) =>
    navigate(`/pilots${query({ site, ce, status, before: undefined, ...over })}`);

  const stream = useEvents(before ? null : { pilots: true }, () => reload());
  const list = usePolled(
    () => api<PilotList>('GET', `/api/pilots${query({ site, ce, status, before, limit: PAGE })}`),
    [site, ce, status, before],
    before ? null : stream === 'live' ? LIVE_POLL_MS : 3000,
  );
  const reload = useThrottled(() => list.reload(), 500);
  const pilots = list.data?.pilots ?? [];
  const last = pilots[pilots.length - 1];
  return (
    <section>
      <h1>Pilots {!before && <small class={`stream stream-${stream}`}>{streamLabel(stream)}</small>}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          go({ site: String(f.get('site') ?? ''), ce: String(f.get('ce') ?? ''), status: String(f.get('status') ?? '') });
        }}
      >
        <label>
          Site <input name="site" value={site} />
        </label>
        <label>
          CE <input name="ce" value={ce} />
        </label>
        <label>
          Status{' '}
          <select name="status" value={status}>
            <option value="">any</option>
            {PILOT_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      {list.error &&
        (isRefusal(list.error) ? (
          <Refused what="The pilot list" />
        ) : (
          <p class="error" role="alert">
            {list.error.message}
          </p>
        ))}
      <div class="table-scroll">
        <table data-testid="pilots">
          <thead>
            <tr>
              <th>Id</th>
              <th>Status</th>
              <th>Reason</th>
              <th>Site</th>
              <th>CE / queue</th>
              <th>Jobs run</th>
              <th>DB12</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {pilots.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={`/pilots/${p.id}`} onClick={onLinkClick}>
                    {p.id}
                  </a>
                </td>
                <td class={`pilot-${p.status}`}>{p.status}</td>
                <td>{p.statusReason}</td>
                <td>
                  <SiteLink site={p.site} />
                </td>
                <td>
                  <CeLink ce={p.ce} /> / {p.queue}
                </td>
                <td>{p.jobsRun}</td>
                <td>{p.benchmark?.toFixed(1) ?? '—'}</td>
                <td>
                  <Time iso={p.lastUpdateAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.data && pilots.length === 0 && <p>No pilots.</p>}
      <nav class="pager">
        <button type="button" disabled={!before} onClick={() => go({ before: undefined })}>
          Newest
        </button>
        <button type="button" disabled={!last || pilots.length < PAGE} onClick={() => last && go({ before: last.id })}>
          Older
        </button>
      </nav>
    </section>
  );
}
