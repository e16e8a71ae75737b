// The Postern web UI: sign up, log in, nodes, terminal, live sessions, recordings, audit,
// the admin pages (users, roles, node registry, settings, join tokens), account.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import './styles.css';
import { api, setCsrf } from './api.ts';
import type { Me } from './api.ts';
import { navigate, usePath } from './router.ts';
import { Login } from './pages/login.tsx';
import { Invite } from './pages/invite.tsx';
import { Nodes } from './pages/nodes.tsx';
import { Sessions } from './pages/sessions.tsx';
import { useTitle } from './ui.tsx';
import type { ComponentType } from 'preact';

/** A page loaded when first shown: xterm.js (most of the UI's bytes) only comes with the terminal and the player. */
function lazy<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  return (props: P) => {
    const [Page, setPage] = useState<ComponentType<P> | undefined>(undefined);
    useEffect(() => { void load().then((c) => setPage(() => c)); }, []);
    return Page ? <Page {...props} /> : <p role="status">Loading…</p>;
  };
}
const TerminalPage = lazy(() => import('./pages/terminal.tsx').then((m) => m.TerminalPage));
const Recordings = lazy(() => import('./pages/recordings.tsx').then((m) => m.Recordings));
const Player = lazy(() => import('./pages/recordings.tsx').then((m) => m.Player));
import { Audit } from './pages/audit.tsx';
import { Account } from './pages/account.tsx';
import { ADMIN_PAGES } from './pages/admin.tsx';
const AdminUsers = lazy(() => import('./pages/admin-users.tsx').then((m) => m.AdminUsers));
const AdminRoles = lazy(() => import('./pages/admin-roles.tsx').then((m) => m.AdminRoles));
const AdminNodes = lazy(() => import('./pages/admin-nodes.tsx').then((m) => m.AdminNodes));
const AdminSettings = lazy(() => import('./pages/admin-settings.tsx').then((m) => m.AdminSettings));
const AdminTokens = lazy(() => import('./pages/admin-settings.tsx').then((m) => m.AdminTokens));
const AdminLocks = lazy(() => import('./pages/admin-locks.tsx').then((m) => m.AdminLocks));

const PAGES: Record<string, string> = { nodes: 'Nodes', sessions: 'Live sessions', recordings: 'Recordings', audit: 'Audit log', account: 'Account', terminal: 'Terminal', join: 'Joined session' };

/** The title of the page at `path` (before the user is known: sign up, log in or loading). */
function titleOf(path: string, me: Me | null | undefined): string {
  if (path.startsWith('invite/')) return 'Sign up';
  if (me === undefined) return 'Loading';
  if (me === null) return 'Log in';
  const [page, sub] = path.split('/');
  if (page === 'recordings' && sub) return 'Recording';
  if (page === 'admin' && me.isAdmin) return ADMIN_PAGES.find(([p]) => p === (sub || 'users'))?.[1] ?? 'No such page';
  return PAGES[page || 'nodes'] ?? (page === 'login' ? 'Nodes' : 'No such page');
}

/** The admin page at admin/SUB (only rendered for an admin; auth refuses anyone else's calls). */
function adminPage(sub: string, me: Me) {
  switch (sub) {
    case 'users': return <AdminUsers me={me} />;
    case 'roles': return <AdminRoles />;
    case 'nodes': return <AdminNodes />;
    case 'settings': return <AdminSettings />;
    case 'tokens': return <AdminTokens />;
    case 'locks': return <AdminLocks />;
    default: return <p>No such page. <a href="/web/admin/users">Users</a></p>;
  }
}

function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [notice, setNotice] = useState('');
  const [menuOpen, setMenuOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  const shown = useRef('');
  useTitle(titleOf(path, me));

  useEffect(() => {
    api<Me>('GET', '/webapi/sessions/web').then((m) => { setCsrf(m.csrfToken); setMe(m); }, () => setMe(null));
    const gone = (ev: Event): void => { setMe(null); setNotice(String((ev as CustomEvent).detail ?? 'Your session ended; log in again.')); };
    window.addEventListener('postern:logged-out', gone);
    return () => window.removeEventListener('postern:logged-out', gone);
  }, []);

  // On a new page the menu folds away and, for a screen reader, focus goes to the content,
  // except on the terminal, which takes the focus itself so keys reach the shell.
  useEffect(() => {
    setMenuOpen(false);
    const first = shown.current === '';
    shown.current = path || 'nodes';
    if (first || /^(terminal|join)\b/.test(path)) return;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);

  if (path.startsWith('invite/')) return <Invite token={path.slice('invite/'.length)} />;
  if (me === undefined) return <main class="center"><p role="status">Loading…</p></main>;
  if (me === null) return <Login notice={notice} onLogin={(m) => { setCsrf(m.csrfToken); setNotice(''); setMe(m); if (path === 'login') navigate('nodes'); }} />;

  const logout = async (): Promise<void> => {
    await api('DELETE', '/webapi/sessions/web').catch(() => {});
    setMe(null);
    setNotice('You are logged out.');
    navigate('login');
  };
  const page = path.split('/')[0] || 'nodes';
  const links: Array<[string, string]> = [['nodes', 'Nodes'], ['sessions', 'Sessions'], ['recordings', 'Recordings'], ...(me.isAdmin ? [['audit', 'Audit'], ['admin', 'Admin']] as Array<[string, string]> : []), ['account', 'Account']];
  const fill = page === 'terminal' || page === 'join';
  const onHeaderKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape' && menuOpen) { setMenuOpen(false); menuButton.current?.focus(); }
  };
  return (
    <div class={`layout${fill ? ' fill' : ''}`}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header class={`top${menuOpen ? ' open' : ''}`} onKeyDown={onHeaderKey}>
        <a class="brand" href="/web/nodes" onClick={(e) => { e.preventDefault(); navigate('nodes'); }}>Postern</a>
        <button type="button" class="menu-button" ref={menuButton} aria-expanded={menuOpen ? 'true' : 'false'} aria-controls="site-menu" onClick={() => setMenuOpen(!menuOpen)}>
          <span class="burger" aria-hidden="true" />Menu
        </button>
        <div class="menu" id="site-menu">
          <nav aria-label="Main">
            {links.map(([to, label]) => (
              <a href={`/web/${to}`} aria-current={page === to ? 'page' : undefined} onClick={(e) => { e.preventDefault(); navigate(to); }}>{label}</a>
            ))}
          </nav>
          <div class="session">
            <span class="who"><span class="sr">Signed in as </span>{me.user}</span>
            <button type="button" class="link" onClick={() => void logout()}>Log out</button>
          </div>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page === 'nodes' || page === 'login' ? <Nodes me={me} />
          : page === 'terminal' ? <TerminalPage />
          : page === 'join' ? <TerminalPage join={path.split('/')[1]} />
          : page === 'sessions' ? <Sessions />
          : page === 'recordings' && path.split('/')[1] ? <Player id={path.split('/')[1]} />
          : page === 'recordings' ? <Recordings />
          : page === 'audit' && me.isAdmin ? <Audit />
          : page === 'admin' && me.isAdmin ? adminPage(path.split('/')[1] || 'users', me)
          : page === 'account' ? <Account me={me} onLogout={() => void logout()} />
          : <p>No such page. <a href="/web/nodes">Nodes</a></p>}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
