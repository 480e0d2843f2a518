import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, isDatabaseUp } from './api.js';

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  reload: () => void;
}

/**
 * Loads `fetcher()` when `deps` change and again every `everyMs` (live pages poll the API each
 * second until the events websocket serves them). A failed poll keeps the last data. Loads
 * again at once when the database comes back after an outage (`wms-db`).
 */
export function usePolled<T>(fetcher: () => Promise<T>, deps: unknown[], everyMs: number | null = null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [tick, setTick] = useState(0);
  const latest = useRef(fetcher);
  latest.current = fetcher;
  // When the database comes back (the banner saw it), load at once rather than at the next poll.
  useEffect(() => {
    const onDb = () => {
      if (isDatabaseUp()) setTick((t) => t + 1);
    };
    window.addEventListener('wms-db', onDb);
    return () => window.removeEventListener('wms-db', onDb);
  }, []);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const d = await latest.current();
        if (live) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (live) setError(e as Error);
      }
      if (live && everyMs !== null) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [...deps, tick, everyMs]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}
