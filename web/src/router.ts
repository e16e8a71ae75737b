// A tiny router over location.pathname under /web/ (the proxy serves index.html for every path).
import { useEffect, useState } from 'preact/hooks';

/** The path below /web/, e.g. "nodes" or "invite/TOKEN". */
export function currentPath(): string {
  return location.pathname.replace(/^\/web\/?/, '').replace(/\/$/, '');
}

/** Goes to a page of the UI. */
export function navigate(path: string): void {
  history.pushState(null, '', `/web/${path}`);
  window.dispatchEvent(new Event('postern:navigate'));
}

/** The current path, re-rendering on navigation. */
export function usePath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = (): void => setPath(currentPath());
    window.addEventListener('popstate', on);
    window.addEventListener('postern:navigate', on);
    return () => { window.removeEventListener('popstate', on); window.removeEventListener('postern:navigate', on); };
  }, []);
  return path;
}

/** Query parameters of the current address. */
export function query(): URLSearchParams {
  return new URLSearchParams(location.search);
}
