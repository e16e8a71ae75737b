// The nodes the user may reach: search, filter by label, pick a login, connect.
import { ErrorMessage } from '../ui.tsx';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { Me } from '../api.ts';
import { navigate } from '../router.ts';
import type { NodeInfo } from '../../../src/api/types.ts';

export function Nodes(props: { me: Me }) {
  const [nodes, setNodes] = useState<NodeInfo[] | undefined>();
  const [search, setSearch] = useState('');
  const [labels, setLabels] = useState('');
  const [login, setLogin] = useState(props.me.logins[0] ?? '');
  const [error, setError] = useState('');
  useEffect(() => {
    const params = new URLSearchParams();
    if (search) params.set('search', search);
    if (labels) params.set('labels', labels);
    const t = setTimeout(() => {
      api<NodeInfo[]>('GET', `/webapi/nodes${params.size ? `?${params}` : ''}`).then((n) => { setNodes(n); setError(''); }, (err) => setError(errorText(err)));
    }, 150);
    return () => clearTimeout(t);
  }, [search, labels]);
  const addLabel = (k: string, v: string): void => {
    const parts = labels ? labels.split(',') : [];
    if (!parts.includes(`${k}=${v}`)) setLabels([...parts, `${k}=${v}`].join(','));
  };
  return (
    <section aria-labelledby="nodes-title">
      <h1 id="nodes-title">Nodes</h1>
      <div class="toolbar">
        <label>Search<input type="search" name="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="name or address" /></label>
        <label>Labels<input name="labels" value={labels} onInput={(e) => setLabels(e.currentTarget.value)} placeholder="env=prod,team=web" /></label>
        <label>Login<select name="login" value={login} onChange={(e) => setLogin(e.currentTarget.value)}>
          {props.me.logins.map((l) => <option value={l}>{l}</option>)}
        </select></label>
      </div>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      <div aria-live="polite">{!nodes ? <p>Loading…</p> : nodes.length === 0 ? <p>No node matches.</p> : <p class="sr">{nodes.length === 1 ? '1 node' : `${nodes.length} nodes`}</p>}</div>
      {nodes && nodes.length > 0 && (
        <table class="list">
          <thead><tr><th>Name</th><th>Address</th><th>Labels</th><th><span class="sr">Connect</span></th></tr></thead>
          <tbody>
            {nodes.map((n) => (
              <tr data-node={n.name}>
                <td data-label="Name">{n.name}</td>
                <td class="mono" data-label="Address">{n.addr}</td>
                <td data-label="Labels">{Object.entries(n.labels).map(([k, v]) => <button type="button" class="chip" title={`Filter by ${k}=${v}`} onClick={() => addLabel(k, v)}>{k}={v}</button>)}</td>
                <td class="actions"><button type="button" onClick={() => navigate(`terminal?node=${encodeURIComponent(n.name)}&login=${encodeURIComponent(login)}`)}>Connect as {login}<span class="sr"> to {n.name}</span></button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
