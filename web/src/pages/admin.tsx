// The admin pages' frame: their own navigation (users, roles, node registry, settings,
// join tokens), a loader for their lists, and the pieces they share. Only admins see
// them; auth checks the admin role on every call they make (/webapi/admin/…).
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { api, errorText } from '../api.ts';
import { navigate } from '../router.ts';

/** The admin pages, by path below /web/admin/, with their titles. */
export const ADMIN_PAGES: ReadonlyArray<[string, string]> = [
  ['users', 'Users'], ['roles', 'Roles'], ['nodes', 'Node registry'], ['settings', 'Settings'], ['tokens', 'Join tokens'], ['locks', 'Locks'],
];

/** The admin pages' navigation, with the current one marked. */
export function AdminNav(props: { current: string }) {
  return (
    <nav aria-label="Admin" class="subnav">
      {ADMIN_PAGES.map(([to, label]) => (
        <a href={`/web/admin/${to}`} aria-current={props.current === to ? 'page' : undefined} onClick={(e) => { e.preventDefault(); navigate(`admin/${to}`); }}>{label}</a>
      ))}
    </nav>
  );
}

/** GETs a list (or object) from the API; `reload` fetches it again. */
export function useLoad<T>(path: string): { data: T | undefined; error: string; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [n, setN] = useState(0);
  useEffect(() => {
    api<T>('GET', path).then((d) => { setData(d); setError(''); }, (err) => setError(errorText(err)));
  }, [path, n]);
  return { data, error, reload: useCallback(() => setN((x) => x + 1), []) };
}

/** A value to copy (an invite link, a certificate, sshd lines), shown whole, with a Copy button. */
export function CopyBlock(props: { label: string; value: string; testid?: string; id: string }) {
  const [copied, setCopied] = useState('');
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied('Copied.');
    } catch {
      setCopied('Copying failed; select the text and copy it by hand.');
    }
  };
  return (
    <div class="copy-block">
      <div class="copy-head">
        <span id={props.id} class="copy-label">{props.label}</span>
        <button type="button" class="small" onClick={() => void copy()}>Copy<span class="sr"> {props.label}</span></button>
        <span class="muted copied" role="status">{copied}</span>
      </div>
      <pre class="copy-value" aria-labelledby={props.id} data-testid={props.testid} tabIndex={0}>{props.value}</pre>
    </div>
  );
}

/** A destructive action in two steps: the button, then "Confirm" or "Cancel" in its place. */
export function ConfirmButton(props: { label: string; what: string; onConfirm: () => Promise<void> | void; children?: ComponentChildren }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return <button type="button" class="danger" onClick={() => setAsking(true)}>{props.label}<span class="sr"> {props.what}</span></button>;
  return (
    <span class="confirm" role="group" aria-label={`${props.label} ${props.what}?`} onKeyDown={(e) => { if (e.key === 'Escape') setAsking(false); }}>
      <button type="button" class="danger solid" autoFocus onClick={() => { setAsking(false); void props.onConfirm(); }}>Confirm: {props.label.toLowerCase()} {props.what}</button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

/** Splits "a, b c" into ["a", "b", "c"]. */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/** How long something lives, for the invite and token forms. */
export const TTL_CHOICES: ReadonlyArray<[number, string]> = [[3_600_000, '1 hour'], [8 * 3_600_000, '8 hours'], [24 * 3_600_000, '24 hours'], [48 * 3_600_000, '48 hours']];
