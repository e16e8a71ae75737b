// Admin: the node registry. Add a node by its host key (and get the host certificate, the
// user CA and the sshd_config lines to copy to it), change its labels, remove it.
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { ErrorMessage, SuccessMessage } from '../ui.tsx';
import type { NodeInfo } from '../../../src/api/types.ts';
import type { AddNodeResult } from '../../../src/api/auth-types.ts';
import { formatLabels, parseLabels } from '../../../src/api/labels.ts';
import { AdminNav, ConfirmButton, CopyBlock, useLoad } from './admin.tsx';

/** Labels typed in a form, or the grammar's complaint. */
function readLabels(text: string): Record<string, string> | string {
  try {
    return parseLabels(text);
  } catch (err) {
    const e = err as Error & { hint?: string };
    return `${e.message}${e.hint ? `. ${e.hint}` : ''}`;
  }
}

function LabelEditor(props: { node: NodeInfo; onDone: (msg: string, error?: boolean) => void; onCancel: () => void }) {
  const [text, setText] = useState(formatLabels(props.node.labels));
  const [error, setError] = useState('');
  const id = `labels-${props.node.name}`;
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    const labels = readLabels(text);
    if (typeof labels === 'string') { setError(labels); return; }
    try {
      await api('PUT', `/webapi/admin/nodes/${encodeURIComponent(props.node.name)}`, { labels });
      props.onDone(`The labels of ${props.node.name} were saved.`);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="inline-form" onSubmit={(e) => void save(e)}>
      <label for={id}>Labels of {props.node.name}</label>
      <input id={id} name="labels" value={text} autoFocus onInput={(e) => setText(e.currentTarget.value)} placeholder="env=prod,team=web" />
      <div class="row">
        <button type="submit" class="small">Save labels</button>
        <button type="button" class="small secondary" onClick={props.onCancel}>Cancel</button>
      </div>
      {error && <ErrorMessage>{error}</ErrorMessage>}
    </form>
  );
}

export function AdminNodes() {
  const nodes = useLoad<NodeInfo[]>('/webapi/admin/nodes');
  const [form, setForm] = useState({ name: '', addr: '', labels: '', hostPublicKey: '' });
  const [added, setAdded] = useState<AddNodeResult | undefined>();
  const [editing, setEditing] = useState<string | undefined>();
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const [busy, setBusy] = useState(false);
  const field = (k: keyof typeof form) => ({ value: form[k], onInput: (e: { currentTarget: { value: string } }) => setForm({ ...form, [k]: e.currentTarget.value }) });

  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    setDone(''); setAdded(undefined);
    if (!form.name.trim() || !form.addr.trim() || !form.hostPublicKey.trim()) { setError('give the node\'s name, address and host public key'); return; }
    const labels = readLabels(form.labels);
    if (typeof labels === 'string') { setError(labels); return; }
    setBusy(true);
    try {
      const r = await api<AddNodeResult>('POST', '/webapi/admin/nodes', { name: form.name.trim(), addr: form.addr.trim(), labels, hostPublicKey: form.hostPublicKey.trim() });
      setAdded(r); setError('');
      setDone(`Node ${r.node.name} was added. Copy its host certificate and the user CA to it and add the lines below to its sshd_config.`);
      setForm({ name: '', addr: '', labels: '', hostPublicKey: '' });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      nodes.reload();
    }
  };
  const remove = async (name: string): Promise<void> => {
    setError(''); setDone('');
    try {
      await api('DELETE', `/webapi/admin/nodes/${encodeURIComponent(name)}`);
      setDone(`Node ${name} was removed.`);
    } catch (err) {
      setError(errorText(err));
    }
    nodes.reload();
  };
  const certPath = added ? `/etc/ssh/${added.node.name}-cert.pub` : '';

  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="nodes" />
      <h1 id="admin-title">Node registry</h1>
      <form class="card admin-form" onSubmit={(e) => void add(e)} aria-labelledby="node-form-title" noValidate>
        <h2 id="node-form-title">Add a node</h2>
        <label>Name<input name="name" autoComplete="off" placeholder="web1" {...field('name')} /></label>
        <label>Address<input name="addr" autoComplete="off" placeholder="10.0.0.5:22" aria-describedby="node-addr-help" {...field('addr')} /></label>
        <p id="node-addr-help" class="muted help">Where the proxy reaches the node's sshd, HOST[:PORT] (port 22 when left out).</p>
        <label>Labels<input name="labels" autoComplete="off" placeholder="env=prod,team=web" {...field('labels')} /></label>
        <label>Host public key<textarea name="hostPublicKey" rows={3} class="mono" placeholder="ssh-ed25519 AAAA… root@web1" aria-describedby="node-key-help" {...field('hostPublicKey')} /></label>
        <p id="node-key-help" class="muted help">The node's /etc/ssh/ssh_host_ed25519_key.pub.</p>
        <div><button type="submit" disabled={busy}>Add node</button></div>
      </form>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      {done && <SuccessMessage>{done}</SuccessMessage>}
      {added && (
        <div class="card wide" data-testid="node-added">
          <h2>Set up {added.node.name}</h2>
          <CopyBlock id="node-cert" label={`Host certificate: save as ${certPath}`} value={added.hostCertificate.trim()} testid="host-certificate" />
          <CopyBlock id="node-ca" label="User CA: save as /etc/ssh/postern_user_ca.pub" value={added.userCaKeys.join('\n')} testid="user-ca" />
          <CopyBlock id="node-sshd" label="Add to /etc/ssh/sshd_config, next to its HostKey line, then reload sshd" value={`HostCertificate ${certPath}\nTrustedUserCAKeys /etc/ssh/postern_user_ca.pub`} testid="sshd-lines" />
        </div>
      )}
      {nodes.error && <ErrorMessage>{nodes.error}</ErrorMessage>}
      <div aria-live="polite">{!nodes.data ? <p>Loading…</p> : nodes.data.length === 0 ? <p>No node is registered yet.</p> : <p class="sr">{nodes.data.length === 1 ? '1 node' : `${nodes.data.length} nodes`}</p>}</div>
      {nodes.data && nodes.data.length > 0 && (
        <table class="list">
          <thead><tr><th>Name</th><th>Address</th><th>Labels</th><th><span class="sr">Actions</span></th></tr></thead>
          <tbody>
            {nodes.data.map((n) => (
              <tr data-node={n.name}>
                <td data-label="Name">{n.name}</td>
                <td class="mono" data-label="Address">{n.addr}</td>
                <td data-label="Labels">{editing === n.name
                  ? <LabelEditor node={n} onCancel={() => setEditing(undefined)} onDone={(msg) => { setEditing(undefined); setError(''); setDone(msg); nodes.reload(); }} />
                  : <span class="mono">{formatLabels(n.labels) || <span class="muted">none</span>}</span>}</td>
                <td class="actions">
                  {editing !== n.name && <button type="button" class="secondary" onClick={() => { setEditing(n.name); setDone(''); }}>Edit labels<span class="sr"> of {n.name}</span></button>}
                  <ConfirmButton label="Remove" what={n.name} onConfirm={() => remove(n.name)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
