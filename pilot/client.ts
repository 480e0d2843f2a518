/**
 * The pilot's HTTP client, on the shared JSON client (`io/json-client.ts`): one base URL, one
 * bearer token (the pilot's, or a job's), JSON in and out, a few retries on what is worth
 * retrying (the service restarting, a 503), and errors (`ApiError`, `io/api-error.ts`) whose
 * message says which call failed and why, in one line.
 *
 * Tokens are short-lived and renewed. The pilot starts with the wrapper's token (long: it must
 * outlive a batch-queue wait); registration answers a short one, which `PilotApi` renews at
 * half-life (`POST /api/pilots/self/token`), falling back to the wrapper's token when the short
 * one expired meanwhile (the services were unreachable). A job channel switches to the renewed
 * job token a heartbeat or status answer carries. A job token refused because the job is over
 * (`jobTokenDeadMessage`) reads as the job's state: a heartbeat answer with that status, a
 * report not accepted; the job wrapper then stops as it did before. Tokens live in memory only.
 *
 * Retries. Ordinary calls retry a few times within seconds. What must reach the services (job
 * status reports through pilot/report-journal.ts, output uploads, the match, registration and
 * the pilot's own status) retries with `retryUntil` (`io/retry.ts`): exponential back-off from 1 s doubling to
 * 15 s, with full jitter (a restarted server is not hit by every pilot in the same second), on
 * connection errors, timeouts, 5xx and 429, until a deadline (the pilot's time left). A 4xx
 * other than 429 is an answer, never retried.
 *
 * At most once. A match carries a claim id (`newClaimId`); `matchUntil` retries the same one
 * until it has an answer, so a lost answer brings back the job already claimed, never a second.
 * A job report or heartbeat refused with `JOB_NOT_HELD_CODE` (`isJobNotHeld`) means another
 * match holds the job: the wrapper kills its payload. A final report (Done, Failed) refused
 * because the job token is dead while the job is in exactly that state was applied before (its
 * answer was lost): it reads as accepted.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { ApiError } from '../io/api-error.js';
import { JsonClient } from '../io/json-client.js';
import { DEFAULT_BACKOFF, quickRetries, retryUntil, type BackoffPolicy } from '../io/retry.js';
import {
  JOB_NOT_HELD_CODE,
  jobStateOfDeadToken,
  type Heartbeat,
  type HeartbeatAnswer,
  type JobStatusAnswer,
  type JobStatusReport,
  type LogBatch,
  type PilotConfig,
  type PilotStatusReport,
  type RegisterAnswer,
  type RegisterRequest,
  type RenewedToken,
} from '../core/pilot-protocol.js';
import type { MatchAnswer } from '../api/index.js';
import type { JobChannel } from './job-wrapper.js';

/**
 * Worth a quick retry within the same call: the server could not be reached or did not answer
 * in time (status 0), or a proxy or the services are away (502, 503, 504).
 */
function retryableNow(e: unknown): boolean {
  return e instanceof ApiError ? e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504 : false;
}

/** The waits of an ordinary call's quick retries. */
const QUICK_RETRIES = quickRetries([250, 1000, 3000], retryableNow);

/** The job is held by another match (rescheduled, another pilot): its payload must stop. */
export function isJobNotHeld(e: unknown): boolean {
  return e instanceof ApiError && e.status === 409 && e.code === JOB_NOT_HELD_CODE;
}

/** A fresh claim id for one match attempt (core/pilot-protocol.ts ClaimIdSchema). */
export function newClaimId(): string {
  return randomBytes(16).toString('base64url');
}

/** A bearer token, or where to read the current one (it is renewed while the pilot runs). */
export type TokenSource = string | (() => string);

/** How long a JSON call, and a sandbox transfer, may take before it counts as unanswered. */
const CALL_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 600_000;

/** The pilot's calls on the shared JSON client (`io/json-client.ts`), with a few quick retries. */
export class HttpClient {
  private readonly http: JsonClient;

  constructor(
    readonly baseUrl: string,
    token: TokenSource,
  ) {
    this.http = new JsonClient({ baseUrl, token, timeoutMs: CALL_TIMEOUT_MS });
  }

  /** One request; JSON body and answer. Retries connection failures and 502/503/504 unless `retries` is false. */
  call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: { retries?: boolean } = {}): Promise<T> {
    return this.http.json<T>(method, path, { json: body, ...(opts.retries === false ? {} : { retry: QUICK_RETRIES }) });
  }

  /** Streams a GET to a file. */
  download(path: string, destFile: string): Promise<void> {
    return this.http.download(path, destFile, { timeoutMs: TRANSFER_TIMEOUT_MS });
  }

  /** Streams a file as the body of a PUT. */
  async upload(path: string, file: string, contentType: string): Promise<void> {
    const { size } = await stat(file);
    const res = await this.http.send('PUT', path, { file: { path: file, size, contentType }, timeoutMs: TRANSFER_TIMEOUT_MS });
    await res.body.dump();
  }
}

/** How long registration and the pilot's status are retried before the pilot's end is known. */
const UNTIL_KNOWN_MS = 5 * 60_000;

/** Renewal: at this fraction of the time left; never sooner than this many ms apart. */
const RENEW_AT = 0.5;
const RENEW_MIN_MS = 1000;
/** After a failed renewal (the services away), the next try. */
const RENEW_RETRY_MS = 30_000;

/** The routes a pilot calls with its own token. */
export class PilotApi {
  readonly http: HttpClient;
  private current: string;
  private renewal: NodeJS.Timeout | null = null;
  private stopped = false;

  /**
   * `token`: the wrapper's. `onLog` hears about renewals that failed (the pilot's remote log).
   */
  constructor(
    readonly baseUrl: string,
    private readonly wrapperToken: string,
    private readonly onLog: (line: string) => void = () => undefined,
  ) {
    this.current = wrapperToken;
    this.http = new HttpClient(baseUrl, () => this.current);
  }

  /** The token the pilot uses now (the push channel reconnects with it). */
  get token(): string {
    return this.current;
  }

  /** Uses `renewed` from now on and renews it again at half of its remaining life. */
  adopt(renewed: RenewedToken): void {
    this.current = renewed.token;
    this.schedule(Date.parse(renewed.tokenExpiresAt));
  }

  private schedule(expiresAtMs: number): void {
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = null;
    if (this.stopped || !Number.isFinite(expiresAtMs)) return;
    const delay = Math.max(RENEW_MIN_MS, (expiresAtMs - Date.now()) * RENEW_AT);
    this.later(delay);
  }

  private later(ms: number): void {
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = setTimeout(() => void this.renew(), Math.min(ms, 2 ** 31 - 1));
    this.renewal.unref();
  }

  /** Asks for a new short token now (with the current one, else the wrapper's). */
  async renew(): Promise<void> {
    if (this.stopped) return;
    const ask = (token: string) => new HttpClient(this.baseUrl, token).call<RenewedToken>('POST', '/api/pilots/self/token');
    try {
      let answer: RenewedToken;
      try {
        answer = await ask(this.current);
      } catch (e) {
        // The short token expired while the services were away: the wrapper's still vouches.
        if (!(e instanceof ApiError && e.status === 401) || this.current === this.wrapperToken) throw e;
        answer = await ask(this.wrapperToken);
      }
      this.adopt(answer);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        this.onLog(`token renewal refused, no more renewals: ${e.message}`);
        this.stopped = true;
        return;
      }
      this.onLog(`token renewal failed (trying again in ${RENEW_RETRY_MS / 1000} s): ${(e as Error).message}`);
      if (!this.stopped) this.later(RENEW_RETRY_MS);
    }
  }

  /** Stops renewing (the pilot ends). */
  close(): void {
    this.stopped = true;
    if (this.renewal) clearTimeout(this.renewal);
    this.renewal = null;
  }

  config(): Promise<PilotConfig> {
    return this.http.call('GET', '/api/pilots/self/config');
  }

  /** The server clock, ms since the epoch (no retries: a retried sample would be skewed). */
  async serverTime(): Promise<number> {
    return (await this.http.call<{ now: number }>('GET', '/api/time', undefined, { retries: false })).now;
  }

  /**
   * Until when calls that must get through (`retryUntil`) are retried: the pilot's end (the job
   * agent sets it from the time left). Before that is known, `UNTIL_KNOWN_MS` from the call.
   */
  deadline: number | null = null;
  /** Back-off of those retries (tests make it short). */
  backoff: BackoffPolicy = DEFAULT_BACKOFF;

  private until(capMs: number, graceMs = 0): number {
    return Math.min(Date.now() + capMs, (this.deadline ?? Infinity) + graceMs);
  }

  private retrying(what: string) {
    return (e: unknown, attempt: number, waitMs: number) =>
      this.onLog(`${what}: ${(e as Error).message} (try ${attempt + 2} in ${(waitMs / 1000).toFixed(1)} s)`);
  }

  /**
   * Registers; a Running answer carries the short-lived token used from then on. Retried while
   * the services are away (at most `UNTIL_KNOWN_MS`); a retry refused because this pilot is
   * Running already was registered by a try whose answer was lost: it goes on with the
   * wrapper's token and renews it at once.
   */
  async register(body: RegisterRequest): Promise<RegisterAnswer> {
    let tries = 0;
    let answer: RegisterAnswer;
    try {
      answer = await retryUntil(
        () => {
          tries++;
          return this.http.call<RegisterAnswer>('POST', '/api/pilots/self/register', body, { retries: false });
        },
        { deadline: this.until(UNTIL_KNOWN_MS), backoff: this.backoff, onRetry: this.retrying('registration') },
      );
    } catch (e) {
      const m = e instanceof ApiError && e.status === 409 ? /^.*pilot (\d+) is Running /.exec(e.message) : null;
      if (tries < 2 || !m) throw e;
      this.onLog('registration: a try whose answer was lost registered this pilot');
      void this.renew();
      return { pilotId: Number(m[1]), status: 'Running', reason: 'registered' };
    }
    if (answer.token !== undefined && answer.tokenExpiresAt !== undefined) {
      this.adopt({ token: answer.token, tokenExpiresAt: answer.tokenExpiresAt });
    }
    return answer;
  }

  /** The pilot's own status; retried while the services are away (at most `UNTIL_KNOWN_MS`). */
  status(body: PilotStatusReport): Promise<unknown> {
    // The last word of a pilot at its end: a minute past it still (the batch system decides).
    return retryUntil(() => this.http.call('POST', '/api/pilots/self/status', body, { retries: false }), {
      deadline: this.until(UNTIL_KNOWN_MS, 60_000),
      backoff: this.backoff,
      onRetry: this.retrying('pilot status'),
    });
  }

  logs(body: LogBatch): Promise<unknown> {
    return this.http.call('POST', '/api/pilots/self/logs', body);
  }

  /** One match call (a few quick retries); `claimId` names the attempt (`newClaimId`). */
  match(resource: Record<string, unknown>, claimId?: string): Promise<MatchAnswer> {
    return this.http.call('POST', '/api/match', claimId !== undefined ? { ...resource, claimId } : resource);
  }

  /**
   * A match attempt that gets an answer: the same claim id is sent again, with back-off and
   * jitter, while the call fails on the way (cannot connect, timeout, 5xx, 429), until
   * `deadline`; then the last error is thrown. Because the claim id is the same, a retry whose
   * predecessor did claim a job answers that job again, never another one.
   */
  matchUntil(resource: Record<string, unknown>, claimId: string, deadline: number, signal?: AbortSignal): Promise<MatchAnswer> {
    return retryUntil(() => this.http.call<MatchAnswer>('POST', '/api/match', { ...resource, claimId }, { retries: false }), {
      deadline,
      // What says the answer may not have come: no connection, a timeout, a proxy or the
      // services away, or asked to slow down. A 500 is an answer (a bug would not go away).
      retryable: (e) => e instanceof ApiError && [0, 429, 502, 503, 504].includes(e.status),
      backoff: this.backoff,
      onRetry: this.retrying(`match (claim ${claimId})`),
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * The JobChannel of one matched job, speaking with its job token, and with the renewed one
   * as soon as an answer carries it.
   */
  jobChannel(jobId: number, jobToken: string): JobChannel {
    let token = jobToken;
    const http = new HttpClient(this.baseUrl, () => token);
    const adopt = (a: { token?: string }) => {
      if (a.token !== undefined) token = a.token;
    };
    /** The job's state when the services refused the token because the job is over. */
    const deadState = (e: unknown) =>
      e instanceof ApiError && e.status === 403 && (e.code === undefined || e.code === 'WMS_FORBIDDEN')
        ? jobStateOfDeadToken(e.message)
        : null;
    return {
      // One try each: the report journal (and the watchdog's next beat) retry.
      setStatus: async (report: JobStatusReport) => {
        try {
          const a = await http.call<JobStatusAnswer>('POST', `/api/jobs/${jobId}/status`, report, { retries: false });
          adopt(a);
          return { accepted: a.accepted, status: a.status, ...(a.duplicate ? { duplicate: true } : {}) };
        } catch (e) {
          const status = deadState(e);
          // A final report applied by an earlier try whose answer was lost.
          if (status !== null && status === report.status && (status === 'Done' || status === 'Failed')) {
            return { accepted: true, status, duplicate: true };
          }
          if (status !== null) return { accepted: false, status };
          throw e;
        }
      },
      heartbeat: async (hb: Heartbeat) => {
        try {
          const a = await http.call<HeartbeatAnswer>('POST', `/api/jobs/${jobId}/heartbeat`, hb, { retries: false });
          adopt(a);
          return { status: a.status, commands: a.commands };
        } catch (e) {
          const status = deadState(e);
          if (status !== null) return { status, commands: [] };
          throw e;
        }
      },
      downloadSandbox: (sha256: string, destFile: string) => http.download(`/api/sandboxes/${sha256}`, destFile),
      uploadSandbox: (file: string, sha256: string) => http.upload(`/api/sandboxes/${sha256}`, file, 'application/gzip'),
    };
  }
}
