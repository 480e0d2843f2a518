/**
 * The client side of the services' event stream (`GET /api/events`, a websocket) for jobs:
 * opens it with the CLI's token (header), subscribes to job ids and hands out the `job` events.
 * `openJobStream` answers null when the stream cannot be had (old server, proxy without
 * websockets, refused token): the caller then polls. Node 20 has no global WebSocket: undici's.
 */
import { WebSocket } from 'undici';
import type { JobState } from '../core/job-states.js';

/** A job's state as the stream sends it (its current state on subscribe, then each change). */
export interface JobStreamEvent {
  type: 'job';
  id: number;
  status: JobState;
  minorStatus: string;
  applicationStatus: string;
  site: string;
  at: string;
}

export interface JobStream {
  /** The current state of each job found, in id order (sent before the acknowledgement). */
  initial: JobStreamEvent[];
  /** Jobs the server does not know (or not for this caller). */
  notFound: number[];
  /**
   * The events that arrived since the last call; waits up to `timeoutMs` for the first one,
   * then `settleMs` for more (so a burst is one batch). Empty on timeout; null once closed.
   */
  next(timeoutMs: number, settleMs?: number): Promise<JobStreamEvent[] | null>;
  close(): void;
}

export interface OpenJobStreamOptions {
  /** Give up opening (connect, upgrade, acknowledgement) after this long. */
  openTimeoutMs?: number;
}

/** Opens the stream on `baseUrl` (http[s]://...) and subscribes to `ids`; null when it cannot. */
export function openJobStream(
  baseUrl: string,
  token: string | null,
  ids: readonly number[],
  o: OpenJobStreamOptions = {},
): Promise<JobStream | null> {
  const url = `${baseUrl.replace(/\/+$/, '').replace(/^http/, 'ws')}/api/events`;
  let socket: WebSocket;
  try {
    // undici accepts headers in the second argument (its own extension of the standard).
    socket = new WebSocket(url, (token ? { headers: { authorization: `Bearer ${token}` } } : {}) as unknown as string[]);
  } catch {
    return Promise.resolve(null);
  }
  const initial: JobStreamEvent[] = [];
  const queue: JobStreamEvent[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  const stream: JobStream = {
    initial,
    notFound: [],
    async next(timeoutMs, settleMs = 0) {
      const wait = (ms: number) =>
        new Promise<void>((done) => {
          const timer = setTimeout(
            () => {
              wake = null;
              done();
            },
            Math.max(0, ms),
          );
          wake = () => {
            clearTimeout(timer);
            done();
          };
        });
      if (queue.length === 0 && !closed) await wait(timeoutMs);
      if (queue.length > 0 && settleMs > 0 && !closed) await new Promise((done) => setTimeout(done, settleMs));
      if (queue.length === 0 && closed) return null;
      return queue.splice(0);
    },
    close() {
      closed = true;
      socket.close();
      poke();
    },
  };

  return new Promise((resolve) => {
    let acknowledged = false;
    const fail = () => {
      if (acknowledged) return;
      acknowledged = true;
      clearTimeout(timer);
      closed = true;
      try {
        socket.close();
      } catch {
        // not open yet
      }
      resolve(null);
    };
    const timer = setTimeout(fail, o.openTimeoutMs ?? 5000);
    socket.addEventListener('open', () => socket.send(JSON.stringify({ subscribe: { jobs: ids } })));
    socket.addEventListener('message', (ev) => {
      let msg: { type?: string; notFound?: number[] } & Partial<JobStreamEvent>;
      try {
        msg = JSON.parse(String(ev.data)) as typeof msg;
      } catch {
        return;
      }
      if (msg.type === 'job') {
        (acknowledged ? queue : initial).push(msg as JobStreamEvent);
        poke();
      } else if (msg.type === 'subscribed' && !acknowledged) {
        acknowledged = true;
        clearTimeout(timer);
        stream.notFound = msg.notFound ?? [];
        resolve(stream);
      } else if (msg.type === 'error' && !acknowledged) {
        fail();
      }
    });
    socket.addEventListener('error', () => fail());
    socket.addEventListener('close', () => {
      fail();
      closed = true;
      poke();
    });
  });
}
