/**
 * `postern serve` ends within a bound on SIGTERM while web terminals are open (it once
 * logged "stopped" and ran on). A real serve, a real sshd node, a user logged
 * in on the web (password and an oathtool code), three web terminals with a shell each; on
 * SIGTERM every browser is told the proxy is shutting down, the process exits 0 within the
 * bound, and no connection is left on the node.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { WebSocket } from 'ws';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { establishedOn } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { SHUTDOWN_STEP_MS } from '../../src/proxy/proxy-service.ts';

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const c = new TestCluster();
after(() => c.stop());

test('SIGTERM with open web terminals: everyone told, serve exits within its bound, nothing left on the node', { timeout: 300_000 }, async (t) => {
  await c.start();
  const node = await c.node('web1', 'env=test');
  await c.user('alice', LOCAL_USER, SECRET);
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  t.after(() => dispatcher.close());
  const login = await request(`https://${c.serve.web}/webapi/sessions/web`, {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'alice', password: TEST_PASSWORD, otp: await c.freshCode('alice', SECRET) }),
  });
  const body = await login.body.text();
  assert.equal(login.statusCode, 200, body);
  const cookie = String(login.headers['set-cookie']).split(';')[0];

  const terms = Array.from({ length: 3 }, () => {
    const ws = new WebSocket(`wss://${c.serve.web}/webapi/terminal?node=web1&login=${LOCAL_USER}&cols=80&rows=24`, { rejectUnauthorized: false, headers: { cookie, origin: `https://${c.serve.web}` } });
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (d: Buffer, binary: boolean) => { if (!binary) messages.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>); });
    ws.on('error', () => {});
    return { ws, messages, closed: new Promise<void>((resolve) => ws.once('close', () => resolve())) };
  });
  for (const term of terms) await waitFor(() => term.messages.find((m) => m.type === 'session'), { what: 'a web shell', detail: () => JSON.stringify(term.messages) + c.serve.stderr() });
  assert.equal(establishedOn(node.port), 3);

  const start = Date.now();
  const code = await c.serve.stop();
  const ms = Date.now() - start;
  t.diagnostic(`serve exited ${ms} ms after SIGTERM with 3 web shells open`);
  assert.equal(code, 0, c.serve.stderr());
  assert.ok(ms < 3 * SHUTDOWN_STEP_MS + 5_000, `serve took ${ms} ms to exit`);
  for (const term of terms) {
    await term.closed;
    assert.equal(term.messages.find((m) => m.type === 'exit')?.reason, 'the proxy is shutting down', JSON.stringify(term.messages));
  }
  await waitFor(() => establishedOn(node.port) === 0, { what: 'no connection left on the node', timeoutMs: 30_000 });
});
