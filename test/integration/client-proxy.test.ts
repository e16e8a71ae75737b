/**
 * The client side against a real cluster (TestCluster: `postern serve`, users logged
 * in, real sshd nodes registered with `nodes add`): plain OpenSSH with the output of
 * `postern config` (ProxyCommand `postern proxy ssh`, strict host key checking, and the
 * jump block), `postern ls` with labels and roles, an expired certificate (message, exit
 * codes, and logging in again on the terminal), and a login not in the certificate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TestCluster, answerLogin } from '../helpers/cluster.ts';
import { onTty, runPostern, POSTERN_BIN, runDetached } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { expireCertificateFile } from '../helpers/auth.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';

const c = new TestCluster();
let alice: string;
let pat: string;
let aliceConfig: string;
const EVE_SECRET = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U';

/** The environment a user's shell has: this Node 24 first on PATH (bin/postern's `env node`), their TSH_HOME, no agent. */
function userEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', NO_COLOR: '1', ...extra };
  delete env.SSH_AUTH_SOCK;
  return env;
}

async function config(home: string, name: string): Promise<string> {
  const r = await runPostern(['config'], { env: userEnv(home) });
  assert.equal(r.code, 0, r.stderr);
  const path = join(c.work, `ssh_config_${name}`);
  writeFileSync(path, r.stdout);
  return path;
}

const ssh = (cfg: string, home: string, args: string[], input?: string) =>
  runDetached('ssh', ['-F', cfg, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentityAgent=none', ...args], userEnv(home), { input });

before(async () => {
  await c.start();
  const role = join(c.work, 'prod-only.yaml');
  writeFileSync(role, 'name: prod-only\nlogins: ["{{internal.logins}}"]\nnode_labels:\n  env: [prod]\n');
  const added = await c.admin(['roles', 'add', '--file', role]);
  assert.equal(added.code, 0, added.stderr);
  alice = await c.user('alice', `${LOCAL_USER},deploy`, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  pat = await c.user('pat', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ', 'prod-only');
  await c.node('web1', 'env=prod');
  await c.node('web2', 'env=prod,team=web');
  await c.node('db1', 'env=dev');
  aliceConfig = await config(alice, 'alice');
});

after(async () => {
  await c.stop();
});

test('ssh -F <postern config> web1.<cluster> works through the ProxyCommand with StrictHostKeyChecking=yes', async () => {
  const r = await ssh(aliceConfig, alice, [`${LOCAL_USER}@web1.test.example`, 'echo', 'ok']);
  assert.equal(r.code, 0, `${r.stderr}\n--- serve ---\n${c.serve.stderr().slice(-3000)}\n--- sshd ---\n${c.nodes.get('web1')!.log()}`);
  assert.equal(r.stdout, 'ok\n');
  // The node was verified by its host certificate only: known_hosts has no line for it.
  const kh = readFileSync(join(alice, 'keys', '127.0.0.1', 'known_hosts'), 'utf8');
  assert.doesNotMatch(kh, /web1/);
  // Every node the role allows, by NAME.<cluster>; and a hop through the config's jump block.
  const db = await ssh(aliceConfig, alice, [`${LOCAL_USER}@db1.test.example`, 'echo', 'ok-db1']);
  assert.equal(db.code, 0, db.stderr);
  assert.equal(db.stdout, 'ok-db1\n');
  const jumped = await runDetached('ssh', ['-F', aliceConfig, '-o', 'BatchMode=yes', '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web2.test.example`, 'echo', 'ok-jump'], userEnv(alice));
  assert.equal(jumped.code, 0, jumped.stderr);
  assert.equal(jumped.stdout, 'ok-jump\n');
});

test('the ProxyCommand passes the proxy\'s refusal to ssh\'s stderr, exit 255', async () => {
  const patConfig = await config(pat, 'pat');
  const denied = await ssh(patConfig, pat, [`${LOCAL_USER}@db1.test.example`, 'true']);
  assert.equal(denied.code, 255);
  assert.match(denied.stderr, /db1/, denied.stderr);
  const unknown = await ssh(aliceConfig, alice, [`${LOCAL_USER}@nosuch.test.example`, 'true']);
  assert.equal(unknown.code, 255);
  assert.match(unknown.stderr, /nosuch/, unknown.stderr);
  const ok = await ssh(patConfig, pat, [`${LOCAL_USER}@web2.test.example`, 'echo', 'ok']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('postern ls env=prod --format json lists exactly the allowed nodes with their labels', async () => {
  const prod = await runPostern(['ls', 'env=prod', '--format', 'json'], { env: userEnv(alice) });
  assert.equal(prod.code, 0, prod.stderr);
  const nodes = JSON.parse(prod.stdout) as Array<{ name: string; addr: string; labels: Record<string, string> }>;
  assert.deepEqual(nodes.map((n) => n.name), ['web1', 'web2']);
  assert.deepEqual(nodes.map((n) => n.labels), [{ env: 'prod' }, { env: 'prod', team: 'web' }]);
  assert.deepEqual(nodes.map((n) => n.addr), [`127.0.0.1:${c.nodes.get('web1')!.port}`, `127.0.0.1:${c.nodes.get('web2')!.port}`]);
  assert.deepEqual(Object.keys(nodes[0]).sort(), ['addr', 'labels', 'name']);

  // A role limited to env=prod sees only those, whatever the filter.
  const patAll = await runPostern(['ls', '--format', 'json'], { env: userEnv(pat) });
  assert.equal(patAll.code, 0, patAll.stderr);
  assert.deepEqual((JSON.parse(patAll.stdout) as Array<{ name: string }>).map((n) => n.name), ['web1', 'web2']);
  const patDev = await runPostern(['ls', 'env=dev', '--format', 'json'], { env: userEnv(pat) });
  assert.deepEqual(JSON.parse(patDev.stdout), []);

  const text = await runPostern(['ls'], { env: userEnv(alice) });
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^Node\s+Address\s+Labels$/);
  assert.match(lines[1], /^-+\s+-+\s+-+$/);
  assert.deepEqual(lines.slice(2).map((l) => l.split(/\s+/)[0]), ['db1', 'web1', 'web2']);
  assert.match(text.stdout, /^web2\s+127\.0\.0\.1:\d+\s+env=prod,team=web$/m);
  const names = await runPostern(['ls', 'team=web', '--format', 'names'], { env: userEnv(alice) });
  assert.equal(names.stdout, 'web2\n');
  const search = await runPostern(['ls', '--search', 'web', '--format', 'names'], { env: userEnv(alice) });
  assert.equal(search.stdout, 'web1\nweb2\n');

  // The completion cache has every name alice listed.
  const cache = JSON.parse(readFileSync(join(alice, 'ls-cache', '127.0.0.1.json'), 'utf8')) as { names: string[] };
  assert.deepEqual(cache.names, ['db1', 'web1', 'web2']);
});

test('a login not in the certificate is refused by postern before dialling', async () => {
  const direct = await runDetached(process.execPath, [POSTERN_BIN, 'proxy', 'ssh', 'nobody-here@web1.test.example:22'], userEnv(alice));
  assert.equal(direct.code, 255);
  assert.equal(direct.stdout, '');
  assert.match(direct.stderr, new RegExp(`error: login "nobody-here" is not in your certificate \\(it allows: ${LOCAL_USER}, deploy\\)`));
  const viaSsh = await ssh(aliceConfig, alice, ['nobody-here@web1.test.example', 'true']);
  assert.equal(viaSsh.code, 255);
  assert.match(viaSsh.stderr, /login "nobody-here" is not in your certificate/);
});

test('an expired certificate: proxy ssh says so (exit 255), ls exits 4; with a terminal, proxy ssh logs in again there (no agent: run ssh again, 255)', async (t) => {
  const eve = await c.user('eve', LOCAL_USER, EVE_SECRET);
  // eve's certificate, re-signed by the cluster's real user CA with a validity that ended an
  // hour ago: really expired, without waiting for one to run out.
  const certPath = join(eve, 'keys', '127.0.0.1', 'eve-ssh', 'test.example-cert.pub');
  const expired = expireCertificateFile(c.serve.dataDir, certPath);
  assert.ok(expired.validBefore.getTime() < Date.now());

  // No terminal (setsid): the message and the hint, exit 255, nothing on stdout.
  const proxySsh = await runDetached(process.execPath, [POSTERN_BIN, 'proxy', 'ssh', `${LOCAL_USER}@web1.test.example:22`], userEnv(eve));
  assert.equal(proxySsh.code, 255);
  assert.equal(proxySsh.stdout, '');
  assert.match(proxySsh.stderr, /error: the certificate of eve for 127\.0\.0\.1 expired at \d{4}-/);
  assert.match(proxySsh.stderr, /hint: Log in again with:  postern login --proxy 127\.0\.0\.1:\d+/);

  const eveConfig = await config(eve, 'eve');
  const viaSsh = await ssh(eveConfig, eve, [`${LOCAL_USER}@web1.test.example`, 'true']);
  assert.equal(viaSsh.code, 255);
  assert.match(viaSsh.stderr, /the certificate of eve for 127\.0\.0\.1 expired/);

  const ls = await runPostern(['ls', 'env=prod', '--format', 'json'], { env: userEnv(eve) });
  assert.equal(ls.code, 4);
  assert.equal(ls.stdout, '');
  assert.match(ls.stderr, /error: the certificate of eve for 127\.0\.0\.1 expired at/);
  assert.match(ls.stderr, /hint: Log in again with:  postern login/);

  // With a terminal: script(1) runs the ProxyCommand on a pseudo-terminal, so /dev/tty opens.
  // scripts/ensure-system-deps.ts installs it (bsdutils); a machine without it says so.
  if (!existsSync('/usr/bin/script')) { t.skip('no /usr/bin/script (bsdutils) to give proxy ssh a terminal: the login on the terminal was not tested'); return; }
  const cmd = `'${process.execPath}' '${POSTERN_BIN}' proxy ssh ${LOCAL_USER}@web1.test.example:22`;
  const tty = onTty(cmd, userEnv(eve, { TERM: 'dumb' }), { timeoutMs: 90_000, detail: () => `--- serve ---\n${c.serve.stderr().slice(-2000)}` });
  const answered = answerLogin(tty, c, 'eve', EVE_SECRET, 200);
  // No agent here: ssh, which read the expired certificate before it started the
  // ProxyCommand, could not take the new one, so it says to run ssh again and exits 255
  // (client-relogin.test.ts: with an agent ssh goes on).
  assert.equal(await tty.closed, 255, tty.out());
  const shown = tty.out();
  assert.match(shown, /run the ssh command again/);
  assert.match(shown, /expired at/);
  assert.ok(answered.has('password') && answered.has('otp'), shown);
  const renewed = parseCertificate(readFileSync(certPath, 'utf8'));
  assert.ok(renewed.validBefore.getTime() > Date.now() + 3600_000, 'a fresh certificate was stored');
});
