/**
 * The dashboard's live updates: `GET /api/events` (services/plugins/events.ts), a websocket
 * opened with `?token=` (browsers cannot set headers on a WebSocket).
 *
 * States of one stream: `connecting` (socket opening, subscription sent on open) → `live`
 * (the server answered `subscribed`) → `down` (closed or failed) → `connecting` again after a
 * backoff (1 s doubling to 15 s). Pages keep polling while the stream is not `live` (the
 * fallback) and only slowly while it is, so a lost event costs at most one slow poll.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { getToken, setDatabaseUp } from './api.js';
import type { JobEvent, PilotEvent, SiteEvent, WmsEvent } from '../../core/events.js';
export type { JobEvent, PilotEvent, SiteEvent, WmsEvent };

export interface Subscription {
  jobs?: number[] | 'mine' | 'all';
  pilots?: boolean;
  sites?: boolean;
}

export type StreamState = 'connecting' | 'live' | 'down';

/** Poll period while the stream is live: a safety net for anything the stream missed. */
export const LIVE_POLL_MS = 15_000;

/**
 * Opens the event stream for `subscription` while the component is mounted (a new socket when
 * the subscription changes) and calls `onEvent` for each job, pilot or site event.
 * `subscription === null` opens nothing. Answers the stream state.
 */
export function useEvents(subscription: Subscription | null, onEvent: (e: WmsEvent) => void): StreamState {
  const [state, setState] = useState<StreamState>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const key = JSON.stringify(subscription);
  useEffect(() => {
    if (subscription === null || typeof WebSocket === 'undefined') {
      setState('down');
      return;
    }
    let closed = false;
    let ws: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let backoff = 1000;
    const open = () => {
      const token = getToken();
      if (closed || !token) return;
      setState('connecting');
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      ws = new WebSocket(`${proto}//${location.host}/api/events?token=${encodeURIComponent(token)}`);
      ws.onopen = () => ws?.send(JSON.stringify({ subscribe: subscription }));
      ws.onmessage = (m) => {
        let msg: { type?: string };
        try {
          msg = JSON.parse(String(m.data)) as { type?: string };
        } catch {
          return;
        }
        if (msg.type === 'subscribed') {
          backoff = 1000;
          setState('live');
        } else if (msg.type === 'error' && (msg as { code?: string }).code === 'WMS_DB_UNAVAILABLE') {
          // The subscription could not be read: the banner shows it; subscribe again after a
          // backoff (closing reconnects), the pages poll meanwhile.
          setDatabaseUp(false);
          ws?.close();
        } else if (msg.type === 'job' || msg.type === 'pilot' || msg.type === 'site') {
          handler.current(msg as WmsEvent);
        }
      };
      ws.onclose = () => {
        ws = null;
        if (closed) return;
        setState('down');
        retry = setTimeout(open, backoff);
        backoff = Math.min(backoff * 2, 15_000);
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(retry);
      ws?.close();
    };
  }, [key]);
  return state;
}

/**
 * `fn` called at most once per `ms` however many times the answer is called (events arrive in
 * bursts; one reload serves them all).
 */
export function useThrottled(fn: () => void, ms = 250): () => void {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  };
}

/** A small badge saying whether the page is live. */
export function streamLabel(state: StreamState): string {
  return state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'polling';
}
