// Live sessions the user may see; join one as observer (watch) or peer (type too).
import { ErrorMessage } from '../ui.tsx';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { navigate } from '../router.ts';
import type { ActiveSession } from '../../../src/api/types.ts';

export function Sessions() {
  const [list, setList] = useState<ActiveSession[] | undefined>();
  const [error, setError] = useState('');
  useEffect(() => {
    const load = (): void => { api<ActiveSession[]>('GET', '/webapi/sessions').then((l) => { setList(l); setError(''); }, (err) => setError(errorText(err))); };
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Live sessions</h1>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      <div aria-live="polite">{!list ? <p>Loading…</p> : list.length === 0 ? <p>No live sessions you may see.</p> : null}</div>
      {list && list.length > 0 && (
        <table class="list">
          <thead><tr><th>User</th><th>Node</th><th>Login</th><th>Started</th><th>Present</th><th><span class="sr">Join</span></th></tr></thead>
          <tbody>
            {list.map((s) => (
              <tr data-session={s.id}>
                <td data-label="User">{s.user}</td><td data-label="Node">{s.node}</td><td data-label="Login">{s.login}</td><td data-label="Started">{new Date(s.startedAt).toLocaleString()}</td>
                <td data-label="Present">{s.participants.map((p) => `${p.user} (${p.mode})`).join(', ')}</td>
                <td class="actions">
                  <button type="button" onClick={() => navigate(`join/${s.id}?mode=observer`)}>Watch<span class="sr"> the session of {s.user} on {s.node}</span></button>
                  <button type="button" onClick={() => navigate(`join/${s.id}?mode=peer`)}>Join as peer<span class="sr"> in the session of {s.user} on {s.node}</span></button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
