/**
 * A history-API router in a few lines: the services answer index.html for every client path,
 * so `/jobs/12` can be reloaded or shared.
 */
import { useEffect, useState } from 'preact/hooks';

export function navigate(path: string): void {
  if (path === location.pathname + location.search + location.hash) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new Event('wms-route'));
}

/** Goes to `path` in place of the current address (Back does not return to it). */
export function redirect(path: string): void {
  history.replaceState(null, '', path);
  window.dispatchEvent(new Event('wms-route'));
}

export function useLocation(): URL {
  const [url, setUrl] = useState(() => new URL(location.href));
  useEffect(() => {
    const update = () => setUrl(new URL(location.href));
    window.addEventListener('popstate', update);
    window.addEventListener('wms-route', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('wms-route', update);
    };
  }, []);
  return url;
}

/** An `<a>` that navigates without a reload (and still opens in a new tab with a modifier). */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') ?? '/');
}
