/**
 * Recordings end to end against a real `postern serve` (TestCluster). The test plays the
 * proxy's part the way a second proxy would: a join token from `postern tokens add --type
 * proxy`, `joinCluster` for an Auth API identity, then the Recorder over the real Auth API.
 * Users then see the recordings through the proxy's signed web API with the real CLI:
 * `postern recordings ls`, `postern play` (text, cast through Debian's `asciinema cat`,
 * pty), a refusal for another user's recording unless admin; a writer killed with SIGKILL
 * mid-session leaves an incomplete recording with what it had sent; a restart keeps them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestCluster } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { joinCluster, remoteAuthClient } from '../../src/auth/remote-client.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { IdentityFile } from '../../src/auth/service.ts';
import { Recorder } from '../../src/proxy/recorder.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { parseHostPort } from '../../src/core/text.ts';
import { loadLogin } from '../../src/client/stored-login.ts';
import { WebClient } from '../../src/client/web-client.ts';
import { requestSigner } from '../../src/client/request-signing.ts';
import { parseCast } from '../../src/api/asciicast.ts';
import type { RecordingMeta } from '../../src/api/types.ts';

const WRITER = fileURLToPath(new URL('../helpers/recording-writer.ts', import.meta.url));
const c = new TestCluster();
const homes: Record<string, string> = {};
let identityFile: string;
let proxyAuth: AuthClient;
let recId: string;

const env = (user: string) => ({ env: { TSH_HOME: homes[user] } });
const asUser = (user: string, args: string[]) => runPostern(args, env(user));

before(async () => {
  await c.start();
  homes.alice = await c.user('alice', 'ubuntu', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  homes.bob = await c.user('bob', 'ubuntu', 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU');
  homes.carol = await c.user('carol', 'root', 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK', 'admin');
  // A second proxy joins with a token, as `serve --roles proxy` would.
  const tok = await c.admin(['tokens', 'add', '--type', 'proxy', '--format', 'json']);
  assert.equal(tok.code, 0, tok.stderr);
  const { token, caPin } = JSON.parse(tok.stdout) as { token: string; caPin: string };
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const addr = parseHostPort(c.serve.auth, 3025);
  const joined = await joinCluster(addr, caPin, { token, name: 'recording-test-proxy', publicKeyPem });
  const identity: IdentityFile = { authAddr: c.serve.auth, clusterName: joined.clusterName, certPem: joined.certPem, keyPem, caPem: joined.caPem };
  identityFile = join(c.work, 'proxy-identity.json');
  writeFileSync(identityFile, JSON.stringify(identity), { mode: 0o600 });
  proxyAuth = remoteAuthClient(addr, identity);
});
after(async () => {
  await proxyAuth?.close();
  await c.stop();
});

test('a recording written through the Auth API is listed and played: text, cast for asciinema, pty', async () => {
  const rec = await Recorder.start(proxyAuth, { user: 'alice', node: 'web1', login: 'ubuntu', kind: 'shell', width: 80, height: 24, term: 'xterm-256color', clientAddr: '127.0.0.1' });
  recId = rec.id;
  rec.output('\x1b]0;alice@web1: ~\x07\x1b[01;32malice@web1\x1b[00m:~$ ');
  for (const ch of "echo 'grüße 🌍'") rec.output(ch);
  rec.output('\r\n');
  // The reply, its UTF-8 split across two reads (and, with a flush between them, across two chunks).
  const reply = Buffer.from('\x1b[31mgrüße 🌍\x1b[0m\r\n');
  const cut = reply.indexOf(Buffer.from('ü')) + 1;
  rec.output(reply.subarray(0, cut));
  await rec.flush();
  rec.output(reply.subarray(cut));
  rec.resize(100, 30);
  rec.output('alice@web1:~$ exit\r\nlogout\r\n');
  const summary = await rec.finish(0);
  assert.deepEqual({ complete: summary.complete, lostBytes: summary.lostBytes }, { complete: true, lostBytes: 0 });
  assert.ok(summary.chunks >= 2);

  const ls = await asUser('alice', ['recordings', 'ls', '--format', 'json']);
  assert.equal(ls.code, 0, ls.stderr);
  const mine = (JSON.parse(ls.stdout) as RecordingMeta[]).find((r) => r.id === recId);
  assert.ok(mine, ls.stdout);
  assert.deepEqual([mine.user, mine.node, mine.login, mine.kind, mine.status, mine.exitCode, mine.width, mine.height], ['alice', 'web1', 'ubuntu', 'shell', 'complete', 0, 80, 24]);
  const table = await asUser('alice', ['recordings', 'ls']);
  assert.match(table.stdout, /^ID\s+User\s+Node\s+Login\s+Started\s+Length\s+Status\n/);
  assert.match(table.stdout, new RegExp(`${recId}\\s+alice\\s+web1\\s+ubuntu\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+\\d+s\\s+complete`));

  const text = await asUser('alice', ['play', recId, '--format', 'text']);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout, "alice@web1:~$ echo 'grüße 🌍'\ngrüße 🌍\nalice@web1:~$ exit\nlogout\n");

  const cast = await asUser('alice', ['play', recId, '--format', 'cast']);
  assert.equal(cast.code, 0, cast.stderr);
  const parsed = parseCast(cast.stdout);
  assert.deepEqual([parsed.header.version, parsed.header.width, parsed.header.height, parsed.header.title, parsed.header.env.TERM], [2, 80, 24, 'alice@web1', 'xterm-256color']);
  assert.deepEqual(parsed.events.filter((e) => e[1] === 'r').map((e) => e[2]), ['100x30']);
  assert.ok(parsed.events.every((e) => !e[2].includes('\uFFFD')), 'no broken UTF-8');
  const castFile = join(c.work, 'x.cast');
  writeFileSync(castFile, cast.stdout);
  // asciinema cat reads /dev/tty, so it runs on a pseudo-terminal from script(1).
  assert.ok(existsSync('/usr/bin/asciinema'), 'asciinema is installed by scripts/ensure-system-deps.ts');
  const cat = spawnSync('script', ['-qfec', `asciinema cat ${castFile}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', TERM: 'xterm' }, timeout: 30_000 });
  assert.equal(cat.status, 0, cat.stdout + cat.stderr);
  assert.match(cat.stdout, /grüße 🌍/);
  assert.match(cat.stdout, /\x1b\[31mgrüße/, 'asciinema cat writes the output with its colours');

  const pty = await asUser('alice', ['play', recId, '--speed', '50', '--skip-idle']);
  assert.equal(pty.code, 0, pty.stderr);
  assert.equal(pty.stdout, parsed.events.filter((e) => e[1] === 'o').map((e) => e[2]).join(''), 'pty replays the output as it was');
});

test("another user's recording is refused (403, a clear message); a user with the admin role may play it", async () => {
  const bobLs = await asUser('bob', ['recordings', 'ls', '--format', 'json']);
  assert.equal(bobLs.code, 0, bobLs.stderr);
  assert.ok(!(JSON.parse(bobLs.stdout) as RecordingMeta[]).some((r) => r.id === recId), 'bob does not see alice\'s recordings');
  const denied = await asUser('bob', ['play', recId, '--format', 'text']);
  assert.equal(denied.code, 1);
  assert.equal(denied.stdout, '');
  assert.match(denied.stderr, new RegExp(`^error: recording ${recId} is not yours: only the user it recorded and admins may see it\\nhint: See the recordings you may play with:  postern recordings ls\\n$`));

  // The same refusal on the wire: HTTP 403 from GET /webapi/recordings/:id.
  const login = loadLogin(homes.bob);
  const web = parseHostPort(login.profile.webProxyAddr, 3080);
  const client = new WebClient({ host: web.host, port: web.port, caPin: login.profile.caPin });
  try {
    await assert.rejects(client.recordingCast(recId, requestSigner(login.keyPair, login.certificate.raw)), (err: Error & { status?: number; code?: string }) => err.status === 403 && err.code === 'ERR_POSTERN_ACCESS_DENIED');
    // Unsigned: 401.
    await assert.rejects(client.recordingCast(recId, () => ''), (err: Error & { status?: number }) => err.status === 401);
  } finally {
    await client.close();
  }

  const carol = await asUser('carol', ['play', recId, '--format', 'text']);
  assert.equal(carol.code, 0, carol.stderr);
  assert.match(carol.stdout, /grüße 🌍/);
  const carolLs = JSON.parse((await asUser('carol', ['recordings', 'ls', '--format', 'json'])).stdout) as RecordingMeta[];
  assert.ok(carolLs.some((r) => r.id === recId));

  const missing = await asUser('alice', ['play', '00000000-0000-4000-8000-000000000000']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /error: recording 00000000-0000-4000-8000-000000000000 does not exist/);

  // The audit log has the session's start and end, the refusal and the plays.
  const audit = await c.admin(['audit', '--format', 'json']);
  const events = (JSON.parse(audit.stdout) as Array<Record<string, unknown>>).filter((e) => e.recording === recId);
  const byType = (t: string) => events.filter((e) => e.type === t);
  assert.deepEqual(byType('recording.start').map((e) => [e.user, e.node, e.login, e.proxy]), [['alice', 'web1', 'ubuntu', 'recording-test-proxy']]);
  assert.deepEqual(byType('recording.end').map((e) => [e.user, e.node, e.login, e.exitCode]), [['alice', 'web1', 'ubuntu', 0]]);
  assert.ok(byType('access.denied').some((e) => e.user === 'bob' && e.success === false));
  assert.ok(byType('recording.access').some((e) => e.user === 'carol'));
});

test('kill -9 of the writer mid-session: the recording holds what it had sent, marked incomplete; a restart keeps it', async () => {
  const child = spawn(process.execPath, [WRITER, identityFile, 'alice'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the writer did not get going\n${out}\n${err}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('unsent\n')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the writer exited with ${code}\n${out}\n${err}`)); });
  });
  const id = /flushed (\S+)/.exec(out)![1];
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const check = async (): Promise<void> => {
    const ls = JSON.parse((await asUser('alice', ['recordings', 'ls', '--format', 'json'])).stdout) as RecordingMeta[];
    const meta = ls.find((r) => r.id === id);
    assert.ok(meta);
    assert.equal(meta.status, 'incomplete');
    assert.equal(meta.endedAt, undefined);
    assert.equal(meta.chunks, 1);
    const text = await asUser('alice', ['play', id, '--format', 'text']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, '$ echo first-part\nfirst-part\n', 'everything up to the last chunk it sent, nothing after');
    const cast = parseCast((await asUser('alice', ['play', id, '--format', 'cast'])).stdout);
    assert.equal(cast.header.postern?.status, 'incomplete');
    assert.deepEqual(cast.events.filter((e) => e[1] === 'r').map((e) => e[2]), ['90x30']);
  };
  await check();

  // A restart of serve on the same data directory and ports: the recordings are still there.
  const ports = { web: c.serve.web, auth: c.serve.auth, ssh: `127.0.0.1:${c.sshPort}` };
  assert.equal(await c.serve.stop(), 0);
  c.serve = await startServe({ dataDir: c.serve.dataDir, args: ['--web-addr', ports.web, '--auth-addr', ports.auth, '--ssh-addr', ports.ssh, '--cluster-name', 'test.example'] });
  await check();
  const again = await asUser('alice', ['play', recId, '--format', 'text']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /grüße 🌍/);
});
