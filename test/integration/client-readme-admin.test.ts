/**
 * The README's "For admins" block, as written, top to bottom, against a real cluster, and
 * the --help examples of the admin commands (users update/unlock, roles add, lock, lock
 * ls/rm, settings set) and of the program itself. Each line runs with bash in an admin's
 * shell (UserShell) on the auth host: `POSTERN_DATA_DIR` names the cluster's data dir, as
 * the README says admin commands find it. Replaced, as the README says: paths (/var/lib/postern,
 * /etc/ssh/), the node's address (a real sshd on loopback, started from what `nodes add`
 * wrote into DIR and the two sshd_config lines it printed), and the ID, NAME, T and sha256:…
 * that earlier commands printed.
 *
 * The `postern serve` lines bind the default ports (3080, 3023, 3025, 3021): they run in
 * private network namespaces (unshare -n; helpers/netns.ts) so the machine's ports stay
 * free, the `--roles proxy` one with the cluster's Auth API bridged in as
 * 127.0.0.1:3025 (auth.example.com:3025), so the proxy really joins with the token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { LOCAL_USER, startSshd } from '../helpers/openssh.ts';
import { runPostern } from '../helpers/cli.ts';
import { freePort } from '../interop/harness.ts';
import { UserShell, helpExamples, readmeBlock } from '../helpers/readme.ts';
import type { ShellRun } from '../helpers/readme.ts';
import { netnsUnavailable, startNetns } from '../helpers/netns.ts';
import type { Netns } from '../helpers/netns.ts';

const c = new TestCluster();
let shell: UserShell;
const noNetns = netnsUnavailable();

/** What earlier lines printed, for the ID and NAME of later ones. */
const printed: { lockId?: string; tokenId?: string; proxyName?: string } = {};

/** The admin's environment: the cluster's data dir (README: "--data-dir, else $POSTERN_DATA_DIR"). */
function adminEnv(): Record<string, string> {
  return { POSTERN_DATA_DIR: c.serve.dataDir };
}

/** Runs a line in the admin's shell; asserts exit 0 (or `code`). */
async function run(written: string, ran: string, opts: { code?: number; env?: Record<string, string>; wrap?: string[] } = {}): Promise<ShellRun> {
  const r = await shell.run(ran, { env: { ...adminEnv(), ...opts.env }, ...(opts.wrap ? { wrap: opts.wrap } : {}) });
  assert.equal(r.code, opts.code ?? 0, `${written}\n  ran as: ${ran}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * Runs a README `postern serve` line in a network namespace of its own until its ready
 * line, runs `whileUp`, stops it (SIGTERM, exit 0); returns the ready line.
 */
async function serveInNetns(written: string, ran: string, env: Record<string, string>, opts: { prepare?: (ns: Netns) => Promise<void>; whileUp?: () => Promise<void> } = {}): Promise<string> {
  const ns = await startNetns();
  try {
    await opts.prepare?.(ns);
    const serve = shell.start(ran, { env, wrap: ns.enter });
    try {
      await serve.waitFor(/^ready: .*$/m, 60_000);
      await opts.whileUp?.();
    } catch (err) {
      await serve.stop();
      throw new Error(`${written}\n  ran as: ${ran}\n${(err as Error).message}\n--- its log ---\n${serve.stderr().slice(-2000)}`);
    }
    const ready = /^ready: .*$/m.exec(serve.stdout())![0];
    assert.equal(await serve.stop(), 0, `${written}: stops cleanly on SIGTERM\n${serve.stderr().slice(-2000)}`);
    return ready;
  } finally {
    await ns.stop();
  }
}

before(async () => {
  await c.start();
  shell = new UserShell(c.work);
});

after(async () => {
  await c.stop();
});

test('README "For admins": every line, top to bottom, as written (serve lines in a network namespace of their own)', { skip: noNetns }, async () => {
  const lines = readmeBlock('For admins');
  const cwd = shell.cwd;
  const hostKey = join(cwd, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const nodePort = await freePort();
  let serveLines = 0;

  for (let i = 0; i < lines.length; i++) {
    const written = lines[i].command;
    const ran = written
      .replace('/var/lib/postern', join(c.work, 'var-lib-postern'))
      .replace('/etc/ssh/postern_user_ca.pub', join(cwd, 'postern_user_ca.pub'))
      .replace('10.0.0.5:22', `127.0.0.1:${nodePort}`)
      .replace(/^postern lock rm ID$/, `postern lock rm ${printed.lockId ?? 'ID'}`)
      .replace(/^postern tokens rm ID$/, `postern tokens rm ${printed.tokenId ?? 'ID'}`);
    if (!/^postern serve /.test(written)) {
      await runLine(written, ran, { hostKey, nodePort });
      continue;
    }
    serveLines++;
    if (!/--roles proxy/.test(written)) {
      // The first line names its data dir; the last one none: the default, which
      // $POSTERN_DATA_DIR sets (as root it would be /var/lib/postern).
      const ready = await serveInNetns(written, ran, { POSTERN_DATA_DIR: join(c.work, `serve-data-${serveLines}`) });
      assert.match(ready, /web=https:\/\/\S+:3080 ssh=\S+:3023 .*auth=127\.0\.0\.1:3025/, ready);
      if (/--cluster-name example\.com/.test(written)) assert.match(ready, /cluster=example\.com/);
      continue;
    }
    // "On another host": a namespace where 127.0.0.1:3025 is the cluster's Auth API. T is a
    // live token: the block's own was revoked by `tokens rm ID` above. The block's
    // `proxies ls` and `proxies rm NAME` after it run while this proxy is up.
    const tok = await c.admin(['tokens', 'add', '--type', 'proxy', '--format', 'json']);
    assert.equal(tok.code, 0, tok.stderr);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    const proxyRan = ran.replace('auth.example.com:3025', '127.0.0.1:3025').replace('--join-token T', `--join-token ${token}`).replace('sha256:…', c.serve.caPin);
    const following: string[] = [];
    while (/^postern proxies /.test(lines[i + 1]?.command ?? '')) following.push(lines[++i].command);
    assert.deepEqual(following, ['postern proxies ls', 'postern proxies rm NAME']);
    const ready = await serveInNetns(written, proxyRan, { POSTERN_DATA_DIR: join(c.work, 'proxy-data') }, {
      prepare: (ns) => ns.bridgeInto(3025, c.serve.auth),
      whileUp: async () => {
        const ls = await run(following[0], following[0]);
        // The joined one (the cluster's own proxy runs in auth's process).
        const row = ls.stdout.split('\n').find((x) => /\sactive$/.test(x) && !/in auth's process/.test(x));
        assert.ok(row, `a joined proxy in:\n${ls.stdout}`);
        const name = row.split(/\s+/)[0];
        printed.proxyName = name;
        await run(following[1], following[1].replace('NAME', name));
        const after = JSON.parse((await c.admin(['proxies', 'ls', '--format', 'json'])).stdout) as Array<{ name: string; revokedAt?: string }>;
        const gone = after.find((p) => p.name === name);
        assert.ok(!gone || gone.revokedAt, `proxies rm revoked ${name}:\n${JSON.stringify(after)}`);
      },
    });
    assert.match(ready, /web=https:\/\/\S+:3080 ssh=\S+:3023/, ready);
  }
  assert.equal(serveLines, 3, 'three serve lines: the first, --roles proxy, and the limits');
  assert.ok(printed.proxyName, 'the proxy joined and proxies ls listed it');
});

/** One line of the block that is not a serve or proxies line: run it and check what it did. */
async function runLine(written: string, ran: string, node: { hostKey: string; nodePort: number }): Promise<void> {
  const cwd = shell.cwd;
  const r = await run(written, ran);
  const out = r.stdout;
  switch (true) {
    case /^postern ca export --type user >/.test(written):
      assert.match(readFileSync(join(cwd, 'postern_user_ca.pub'), 'utf8'), /^ssh-ed25519 \S+/);
      return;
    case /^postern nodes add /.test(written): {
      // The node, set up as the output says: its host certificate and the user CA in DIR,
      // the two sshd_config lines next to its HostKey; then a user reaches it.
      const cert = join(cwd, 'DIR', 'web1-cert.pub');
      const ca = join(cwd, 'DIR', 'user_ca.pub');
      assert.ok(out.includes(`HostCertificate ${cert}`) && out.includes(`TrustedUserCAKeys ${ca}`), out);
      assert.equal(readFileSync(ca, 'utf8'), readFileSync(join(cwd, 'postern_user_ca.pub'), 'utf8'), 'ca export printed the same user CA');
      const sshd = await startSshd({ trustedUserCaKeys: readFileSync(ca, 'utf8'), hostKey: { privatePath: node.hostKey, certPath: cert }, port: node.nodePort });
      c.onStop(() => sshd.stop());
      return;
    }
    case written === 'postern nodes ls':
      assert.match(out, /web1\s+127\.0\.0\.1:\d+\s+env=prod/);
      return;
    case /^postern nodes update web1/.test(written):
      assert.match((await c.admin(['nodes', 'ls'])).stdout, /team=web/);
      return;
    case /^postern nodes renew web1 --out DIR/.test(written): {
      // The renewed certificate in DIR is the one sshd presents: a user gets through.
      const home = await c.user('carol', LOCAL_USER, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
      const ssh = await runPostern(['ssh', 'web1', 'echo node-$((6*7))'], { env: { TSH_HOME: home } });
      assert.equal(ssh.code, 0, ssh.stderr);
      assert.equal(ssh.stdout, 'node-42\n');
      assert.ok(existsSync(userFiles(home, 'carol').cert));
      return;
    }
    case /^postern roles add dev /.test(written):
      assert.match(out, /Role dev saved: logins ubuntu on nodes with env=dev\|staging/);
      return;
    case written === 'postern roles ls':
      assert.match(out, /\bdev\b/);
      assert.match(out, /\baccess\b/);
      assert.match(out, /\badmin\b/);
      return;
    case /^postern users add alice /.test(written):
      assert.match(out, /https:\/\/\S+\/web\/invite\/\S+/);
      assert.match(out, /postern signup https:\/\/\S+ --ca-pin sha256:[0-9a-f]{64}/);
      return;
    case written === 'postern users ls':
      assert.match(out, /alice/);
      return;
    case /^postern users update alice /.test(written): {
      const u = JSON.parse((await c.admin(['users', 'ls', '--format', 'json'])).stdout) as Array<{ name: string; roles: string[]; logins: string[] }>;
      const alice = u.find((x) => x.name === 'alice');
      assert.deepEqual({ roles: alice?.roles.sort(), logins: alice?.logins }, { roles: ['access', 'dev'], logins: ['ubuntu', 'deploy'] });
      return;
    }
    case written === 'postern users unlock alice':
    case written === 'postern users reset alice':
    case written === 'postern settings show':
      return;
    case /^postern lock --user alice /.test(written):
      printed.lockId = /\(id ([0-9a-f-]+)\)/.exec(out)?.[1];
      assert.ok(printed.lockId, out);
      return;
    case written === 'postern lock ls':
      assert.match(out, /user alice\s+laptop stolen/);
      return;
    case written === 'postern lock rm ID': {
      const ls = await c.admin(['lock', 'ls', '--format', 'json']);
      assert.equal(ls.stdout.trim(), '[]');
      return;
    }
    case /^postern audit /.test(written):
      assert.match(out, /user\.created/);
      assert.match(out, /lock\.created/);
      assert.match(out, /node\.added/);
      return;
    case written === 'postern settings set session_recording proxy':
      assert.match((await c.admin(['settings', 'show'])).stdout, /session_recording\s+proxy/);
      return;
    case written === 'postern tokens add --type proxy':
      printed.tokenId = /\(id ([0-9a-f]+)\)/.exec(out)?.[1];
      assert.ok(printed.tokenId, out);
      assert.match(out, /postern serve --roles proxy --auth-server AUTH_HOST:\d+ --join-token [0-9a-f]+ --ca-pin sha256:/);
      return;
    case written === 'postern tokens ls':
      assert.ok(out.includes(printed.tokenId ?? '?'), out);
      return;
    case written === 'postern tokens rm ID':
      assert.ok(!(await c.admin(['tokens', 'ls'])).stdout.includes(printed.tokenId ?? '?'));
      return;
    case written === 'postern users rm alice':
      assert.doesNotMatch((await c.admin(['users', 'ls'])).stdout, /alice/);
      return;
    case written === 'postern roles rm dev':
      assert.doesNotMatch((await c.admin(['roles', 'ls'])).stdout, /\bdev\b/);
      return;
    case written === 'postern nodes rm web1':
      assert.doesNotMatch((await c.admin(['nodes', 'ls'])).stdout, /web1/);
      return;
    default:
      assert.fail(`a README line this test does not check yet: ${written}`);
  }
}

test('--help examples of roles add, users update and unlock, lock, lock ls and rm, settings set, and the program\'s serve and users add, as written', { skip: noNetns }, async () => {
  // In an order where each finds what it names: roles add makes dev and bob, whom users update changes.
  const commands = ['roles add', 'users update', 'users unlock', 'lock', 'lock ls', 'lock rm', 'settings set', ''];
  const all = await helpExamples();
  const examples = commands.flatMap((cmd) => all.filter((e) => e.command === cmd));
  assert.ok(examples.length >= 20, examples.map((e) => e.text).join('\n'));
  // The names they use: a user alice (the lock's), and the file roles add --file's comment describes.
  const alice = await c.admin(['users', 'add', 'alice', '--logins', 'ubuntu']);
  assert.ok(alice.code === 0 || /already exists/.test(alice.stderr), alice.stderr);
  writeFileSync(join(shell.cwd, 'dev.yaml'), 'name: dev\nlogins: [ubuntu]\nnode_labels: { env: [dev, staging] }\n');
  let lockId = '';
  const ran: string[] = [];
  for (const { command, text } of examples) {
    ran.push(text);
    if (command === '') {
      // The program's help: what an engineer runs is run by client-readme-engineer.test.ts.
      if (/^postern (login|status)\b/.test(text)) continue;
      if (text === 'postern serve') {
        const ready = await serveInNetns(text, text, { POSTERN_DATA_DIR: join(c.work, 'serve-data-help') });
        assert.match(ready, /web=https:\/\/\S+:3080/);
        continue;
      }
      assert.equal(text, 'postern users add NAME --logins LOGINS');
      await run(text, 'postern users add dave --logins dave');
      continue;
    }
    if (/^postern lock --/.test(text)) {
      const r = await run(text, text);
      lockId = /\(id ([0-9a-f-]+)\)/.exec(r.stdout)?.[1] ?? '';
      assert.ok(lockId, r.stdout);
      continue;
    }
    if (/^postern lock rm /.test(text)) {
      // 3f2a, 3f2a9c1e: the id of a lock, or a unique prefix of it.
      if (!lockId) {
        const made = await c.admin(['lock', '--node', 'db9', '--reason', 'to remove', '--format', 'json']);
        lockId = (JSON.parse(made.stdout) as { id: string }).id;
      }
      await run(text, text.replace(/\b3f2a(9c1e)?\b/, lockId.slice(0, 8)));
      lockId = '';
      continue;
    }
    // users unlock's "instead:  postern users reset NAME".
    await run(text, text.replace(/\bNAME\b/, 'alice'));
  }
  assert.ok(ran.includes('postern serve') && ran.includes('postern lock rm 3f2a9c1e') && ran.includes('postern roles add --file dev.yaml'), ran.join('\n'));
  const users = JSON.parse((await c.admin(['users', 'ls', '--format', 'json'])).stdout) as Array<{ name: string; roles: string[]; logins: string[] }>;
  const bob = users.find((u) => u.name === 'bob');
  assert.deepEqual({ roles: bob?.roles, logins: bob?.logins }, { roles: ['dev'], logins: ['bob', 'postgres'] });
  assert.match((await c.admin(['settings', 'show'])).stdout, /session_recording\s+proxy/);
  const roles = (await c.admin(['roles', 'ls'])).stdout;
  assert.match(roles, /web-ops/);
  assert.match(roles, /everything/);
});
