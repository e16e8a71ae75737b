// Live sessions the user may see; join one as observer (watch) or peer (type too).
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
      {error && <p class="error" role="alert">{error}</p>}
      {!list ? <p>Loading…</p> : list.length === 0 ? <p>No live sessions you may see.</p> : (
        <table class="list">
          <thead><tr><th>User</th><th>Node</th><th>Login</th><th>Started</th><th>Present</th><th><span class="sr">Join</span></th></tr></thead>
          <tbody>
            {list.map((s) => (
              <tr data-session={s.id}>
                <td>{s.user}</td><td>{s.node}</td><td>{s.login}</td><td>{new Date(s.startedAt).toLocaleString()}</td>
                <td>{s.participants.map((p) => `${p.user} (${p.mode})`).join(', ')}</td>
                <td class="actions">
                  <button type="button" onClick={() => navigate(`join/${s.id}?mode=observer`)}>Watch</button>
                  <button type="button" onClick={() => navigate(`join/${s.id}?mode=peer`)}>Join as peer</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
