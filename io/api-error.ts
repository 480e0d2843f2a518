/**
 * The one error of the Node runtime (the CLI, the pilot) for a call to the WMS API that did not
 * succeed: the server's answer `{ code, message, problems? }` with its HTTP status and
 * `Retry-After`, or no answer at all (status 0). Retryability is data on it (`status`, `code`,
 * `retryAfterSeconds`), so that callers match on those rather than on their own classes. The
 * CLI's `CliError` extends it with what the CLI prints (exit code, file names); the browser
 * dashboard keeps its own (`web/`), having no Node.
 */

/** One problem of a 400 answer: a JDL line and column, a body path, or only a message. */
export interface ApiProblem {
  message: string;
  line?: number;
  column?: number;
  attribute?: string;
  path?: string;
  jdl?: number;
}

/** The code of an ApiError for a server that could not be reached or did not answer in time. */
export const UNREACHABLE = 'UNREACHABLE';

export interface ApiErrorDetails {
  problems?: ApiProblem[];
  /** The answer's `Retry-After`, in seconds. */
  retryAfterSeconds?: number;
  /** What the server said (its `message`), or why it did not answer (a connection error's code); default: `message`. */
  reason?: string;
  cause?: unknown;
}

/** A call that failed. `status` is the HTTP status; 0 when there was no answer (or, in the CLI, the failure is local). */
export class ApiError extends Error {
  readonly problems: ApiProblem[];
  readonly retryAfterSeconds: number | undefined;
  /** What the server said, or why it did not answer, without the call's name: for callers that word their own message. */
  readonly reason: string;

  constructor(
    message: string,
    readonly status: number = 0,
    readonly code?: string,
    details: ApiErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.problems = details.problems ?? [];
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.reason = details.reason ?? message;
  }
}

/** The server is away for now (connection failure, a 5xx) or asks to slow down (429): worth sending again later. */
export function retryableLater(e: unknown): boolean {
  return e instanceof ApiError ? e.status === 0 || e.status === 429 || e.status >= 500 : false;
}

/** Errors of a connection that could not be made or broke: the server is down, restarting or unknown. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ECONNRESET',
  'EPIPE',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** The connection error code in `e`, its causes or its aggregated errors; undefined when there is none. */
export function connectionCode(e: unknown): string | undefined {
  for (let x: unknown = e, i = 0; x && i < 4; i++) {
    const c = (x as { code?: unknown }).code;
    if (typeof c === 'string' && CONNECTION_CODES.has(c)) return c;
    if ((x as { name?: unknown }).name === 'TimeoutError') return 'ETIMEDOUT';
    const inner = (x as { errors?: unknown[] }).errors;
    if (Array.isArray(inner)) {
      for (const y of inner) {
        const code = connectionCode(y);
        if (code) return code;
      }
    }
    x = (x as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The error for a request that got no answer: `call` (`GET /api/jobs`) could not reach
 * `baseUrl`. Code `UNREACHABLE` when it is a connection failure or a timeout, none when the
 * request itself failed (the reason says why).
 */
export function noAnswer(call: string, baseUrl: string, e: unknown): ApiError {
  const code = connectionCode(e);
  const reason = code ?? (e instanceof Error ? e.message : String(e));
  return new ApiError(`${call}: cannot reach ${baseUrl} (${reason})`, 0, code ? UNREACHABLE : undefined, { reason, cause: e });
}

/**
 * The error for an answer outside 2xx: its status, the body's `{ code, message, problems }`
 * when it is the API's JSON (else the first 300 characters of the text: a proxy's page), and
 * `Retry-After` in seconds. The message names the call: `POST /api/match: 503 database unavailable`.
 */
export function errorOfAnswer(call: string, status: number, text: string, retryAfter?: string | string[]): ApiError {
  let body: { code?: unknown; message?: unknown; problems?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as typeof body;
  } catch {
    // not JSON: a proxy's page
  }
  const said = typeof body.message === 'string' ? body.message : text.slice(0, 300).trim() || `HTTP ${status}`;
  const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return new ApiError(`${call}: ${status} ${said}`, status, typeof body.code === 'string' ? body.code : undefined, {
    problems: Array.isArray(body.problems) ? (body.problems as ApiProblem[]) : [],
    reason: typeof body.message === 'string' ? body.message : `HTTP ${status}`,
    ...(retryAfter !== undefined && Number.isFinite(seconds) && seconds >= 0 ? { retryAfterSeconds: seconds } : {}),
  });
}
