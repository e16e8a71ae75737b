import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../helpers/openssh.ts';
import type { Agent } from '../helpers/openssh.ts';
import { waitFor } from '../helpers/wait.ts';
import { AgentClient, AgentError } from '../../src/ssh/agent.ts';
import { formatCertificate, signCertificate } from '../../src/ssh/certs.ts';
import { encodePrivateKeyOpenSSH, fingerprintSha256, generateKeyPair, verifySsh } from '../../src/ssh/keys.ts';
import { ValidationError } from '../../src/core/errors.ts';

let dir: string;
let sock: string;
let agent: Agent | undefined;
const clients: AgentClient[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-agent-'));
  // SSH_ASKPASS=/bin/false: a key added with "confirm" is always refused, never prompts.
  agent = await startAgent({ env: { ...process.env, SSH_ASKPASS: '/bin/false', SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' } });
  sock = agent.socket;
});

after(async () => {
  for (const c of clients) c.close();
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(): Promise<AgentClient> {
  const c = await AgentClient.connect(sock);
  clients.push(c);
  return c;
}

function sshAdd(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('ssh-add', args, { encoding: 'utf8', env: { ...process.env, SSH_AUTH_SOCK: sock } });
}

const ca = generateKeyPair();

function userCert(pair = generateKeyPair()) {
  const cert = signCertificate(ca, { type: 'user', subjectPublicKey: pair.publicWire, keyId: 'alice', principals: ['alice'], ttlMs: 3600_000, serial: 9n });
  return { pair, cert };
}

test('a key added with its certificate and a lifetime shows in ssh-add, lists, signs and is removed', async (t) => {
  const client = await connect();
  const { pair, cert } = userCert();
  await client.addIdentity(pair, { certificate: cert, comment: 'alice@postern', lifetimeSeconds: 3600 });
  t.after(() => client.removeAll());

  const listed = sshAdd('-L');
  assert.equal(listed.status, 0, listed.stderr);
  assert.ok(listed.stdout.split('\n').includes(formatCertificate(cert, 'alice@postern')), listed.stdout);
  const fingerprints = sshAdd('-l');
  assert.match(fingerprints.stdout, new RegExp(`^256 ${fingerprintSha256(cert.raw).replace(/[+/]/g, '\\$&')} alice@postern \\(ED25519-CERT\\)$`, 'm'));

  const ids = await client.list();
  const mine = ids.find((id) => id.wire.equals(cert.raw));
  assert.ok(mine, 'list returns the certificate identity');
  assert.equal(mine.comment, 'alice@postern');

  const data = Buffer.from('session id and userauth request');
  const sig = await client.sign(cert.raw, data);
  assert.equal(verifySsh(pair.publicWire, data, sig), true);
  assert.equal(verifySsh(cert.raw, data, sig), true);
  assert.equal(verifySsh(pair.publicWire, Buffer.from('something else'), sig), false);

  await client.remove(cert.raw);
  assert.ok(!(await client.list()).some((id) => id.wire.equals(cert.raw)));
  assert.ok(!sshAdd('-L').stdout.includes(cert.raw.toString('base64')));
});

test('the agent forgets a key when its lifetime ends', async () => {
  const client = await connect();
  const pair = generateKeyPair();
  await client.addIdentity(pair, { comment: 'short', lifetimeSeconds: 1 });
  assert.ok((await client.list()).some((id) => id.wire.equals(pair.publicWire)));
  // Gone once its second is up (the agent checks lifetimes when it is asked); a key that stays fails here.
  await waitFor(async () => !(await client.list()).some((id) => id.wire.equals(pair.publicWire)), { what: 'the key to be gone after its lifetime', timeoutMs: 10_000, intervalMs: 100 });
});

test('a plain key without constraints can be added, used and removed', async () => {
  const client = await connect();
  const pair = generateKeyPair();
  await client.addIdentity(pair, { comment: 'plain' });
  assert.ok(sshAdd('-L').stdout.includes(`ssh-ed25519 ${pair.publicWire.toString('base64')} plain`));
  const sig = await client.sign(pair.publicWire, Buffer.from('x'));
  assert.equal(verifySsh(pair.publicWire, Buffer.from('x'), sig), true);
  await client.remove(pair.publicWire);
});

test('agent failure replies become AgentError with a clear code', async () => {
  const client = await connect();
  const stranger = generateKeyPair();
  await assert.rejects(client.remove(stranger.publicWire), (err: unknown) => {
    assert.ok(err instanceof AgentError);
    assert.equal(err.code, 'ERR_POSTERN_AGENT_FAILURE');
    assert.equal(err.message, 'ssh-agent refused to remove the key');
    return true;
  });
  await assert.rejects(client.sign(stranger.publicWire, Buffer.from('x')), { code: 'ERR_POSTERN_AGENT_FAILURE', message: 'ssh-agent refused to sign' });
  // The connection stays usable after a failure.
  assert.ok(Array.isArray(await client.list()));
});

test('a key added with confirm is refused for signing when the user does not confirm', async () => {
  const client = await connect();
  const pair = generateKeyPair();
  await client.addIdentity(pair, { comment: 'confirm me', confirm: true });
  await assert.rejects(client.sign(pair.publicWire, Buffer.from('x')), { code: 'ERR_POSTERN_AGENT_FAILURE' });
  await client.remove(pair.publicWire);
});

test('a key and certificate written by us are loaded by ssh-add and listed by our client', async () => {
  const client = await connect();
  const { pair, cert } = userCert();
  const keyPath = join(dir, 'id_postern');
  writeFileSync(keyPath, encodePrivateKeyOpenSSH(pair, 'from-disk'), { mode: 0o600 });
  writeFileSync(`${keyPath}-cert.pub`, `${formatCertificate(cert, 'from-disk')}\n`);
  const added = sshAdd('-t', '600', keyPath);
  assert.equal(added.status, 0, added.stderr);
  const ids = await client.list();
  assert.ok(ids.some((id) => id.wire.equals(cert.raw)), 'certificate identity present');
  assert.ok(ids.some((id) => id.wire.equals(pair.publicWire)), 'plain key present');
  await client.removeAll();
  assert.equal((await client.list()).length, 0);
});

test('requests sent at once get their own replies', async () => {
  const client = await connect();
  const pairs = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  await Promise.all(pairs.map((p, i) => client.addIdentity(p, { comment: `k${i}` })));
  const data = Buffer.from('concurrent');
  const sigs = await Promise.all(pairs.map((p) => client.sign(p.publicWire, data)));
  sigs.forEach((sig, i) => assert.equal(verifySsh(pairs[i].publicWire, data, sig), true));
  await client.removeAll();
});

test('a certificate for another key is refused before anything is sent', async () => {
  const client = await connect();
  const { cert } = userCert();
  await assert.rejects(client.addIdentity(generateKeyPair(), { certificate: cert }), ValidationError);
  await assert.rejects(client.addIdentity(generateKeyPair(), { lifetimeSeconds: 0 }), ValidationError);
});

test('connecting to a socket with no agent says so and how to fix it', async () => {
  await assert.rejects(AgentClient.connect(join(dir, 'missing.sock')), (err: unknown) => {
    assert.ok(err instanceof AgentError);
    assert.equal(err.code, 'ERR_POSTERN_AGENT_UNAVAILABLE');
    assert.match(err.message, /^cannot reach ssh-agent at .*missing\.sock/);
    assert.match(err.hint ?? '', /ssh-agent/);
    return true;
  });
});

test('a closed client rejects new requests', async () => {
  const client = await connect();
  client.close();
  await assert.rejects(client.list(), { code: 'ERR_POSTERN_AGENT_CONNECTION' });
});
