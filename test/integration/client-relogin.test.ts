/**
 * The engineer's OpenSSH through `postern config`'s block, from a shell that has nothing of
 * the project's environment (HOME, PATH with Debian's Node 20 first, an agent or not):
 * the ProxyCommand names the Node that runs Postern and TSH_HOME when it is not ~/.tsh
 * (item 7). And a really expired certificate: `ssh` with the ProxyCommand logs in again on
 * the terminal and goes on with the new certificate through the ssh-agent (same key pair);
 * without an agent it says to run ssh again (255), and the run again works; `postern ssh`
 * logs in again and goes on (item 3).
 *
 * Each test of an expired certificate logs in again as a user of its own: auth takes a
 * TOTP step of a user once, and a user's signup and login leave only one step of the
 * three it accepts at once, so five logins again of one user would wait for two minutes
 * of steps to come.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, answerLogin, userFiles } from '../helpers/cluster.ts';
import { onTty, runPostern, runDetached, POSTERN_BIN } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { expireCertificateFile } from '../helpers/auth.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';

const c = new TestCluster();
/** The users of this file and their TOTP secrets: eve, and one for each further test that logs in again. */
const SECRETS = {
  eve: 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U',
  fay: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  gus: 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ',
  hal: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ',
  ivy: 'OJSWG33SMRUW4ZZANJXWS3TTEBZG63LF',
};
type User = keyof typeof SECRETS;
/** Each user's TSH_HOME, logged in. */
const homes = {} as Record<User, string>;
let eve: string;
let agentSock: string;
const noScript = !existsSync('/usr/bin/script') && 'no /usr/bin/script (bsdutils) to give ssh a terminal';

/** A user's shell: their HOME, a PATH where Debian's `node` (not Node 24) comes first, maybe an agent; nothing else. */
function bareEnv(home: string, agent?: string): NodeJS.ProcessEnv {
  return { HOME: home, PATH: '/usr/bin:/bin', TERM: 'dumb', ...(agent ? { SSH_AUTH_SOCK: agent } : {}) };
}

/** `postern config` run as the user would, written to a file. */
async function configFile(env: Record<string, string | undefined>, name: string): Promise<{ path: string; text: string }> {
  const r = await runPostern(['config'], { env });
  assert.equal(r.code, 0, r.stderr);
  const path = join(c.work, `ssh_config_${name}`);
  writeFileSync(path, r.stdout);
  return { path, text: r.stdout };
}

/**
 * Runs `cmd` on a terminal (script), answers the login prompts for `user` on it, and resolves
 * with the screen and the exit status.
 */
async function onTerminal(cmd: string, env: NodeJS.ProcessEnv, user: User): Promise<{ code: number | null; out: string; answered: Set<string> }> {
  const tty = onTty(cmd, env);
  const answered = answerLogin(tty, c, user, SECRETS[user]);
  const timer = setTimeout(() => tty.proc.kill('SIGKILL'), 120_000);
  const code = await tty.closed;
  clearTimeout(timer);
  return { code, out: tty.out(), answered };
}

/** What each test of an expired certificate starts from: `postern config` in a file, `user`'s certificate expired, an empty HOME. */
async function expired(name: string, user: User): Promise<{ cfg: string; home: string; before: ReturnType<typeof expireCertificateFile> }> {
  const { path: cfg } = await configFile({ TSH_HOME: homes[user] }, name);
  const before = expireCertificateFile(c.serve.dataDir, userFiles(homes[user], user).cert);
  const home = join(c.work, `${name}-home`);
  mkdirSync(home, { recursive: true });
  return { cfg, home, before };
}

before(async () => {
  await c.start();
  agentSock = await c.agent();
  for (const user of Object.keys(SECRETS) as User[]) homes[user] = await c.user(user, LOCAL_USER, SECRETS[user]);
  eve = homes.eve;
  await c.node('web1', 'env=prod');
});

after(async () => {
  await c.stop();
});

test('postern config works from a bare shell: Node 24 and TSH_HOME named in the ProxyCommand when not the defaults', async () => {
  const userHome = join(c.work, 'user-home');
  mkdirSync(userHome, { recursive: true });
  // TSH_HOME set for `postern config` only: the block carries it, and the Node that ran it.
  const custom = await configFile({ TSH_HOME: eve }, 'custom');
  assert.match(custom.text, new RegExp(`ProxyCommand env TSH_HOME=${eve} POSTERN_FROM_SOURCE=1 ${process.execPath} ${POSTERN_BIN} proxy ssh `));
  const viaCustom = await runDetached('ssh', ['-F', custom.path, '-o', 'BatchMode=yes', `${LOCAL_USER}@web1.test.example`, 'echo', 'bare-$((6*7))'], bareEnv(userHome));
  assert.equal(viaCustom.code, 0, viaCustom.stderr);
  assert.equal(viaCustom.stdout, 'bare-42\n');

  // TSH_HOME is ~/.tsh: no TSH_HOME in the line, and it still works with only HOME set.
  const defaultHome = join(c.work, 'default-home');
  mkdirSync(defaultHome, { recursive: true });
  symlinkSync(eve, join(defaultHome, '.tsh'));
  const plain = await configFile({ HOME: defaultHome, TSH_HOME: undefined }, 'default');
  assert.doesNotMatch(plain.text, /TSH_HOME/);
  assert.match(plain.text, new RegExp(`ProxyCommand env POSTERN_FROM_SOURCE=1 ${process.execPath} ${POSTERN_BIN} proxy ssh `));
  const viaDefault = await runDetached('ssh', ['-F', plain.path, '-o', 'BatchMode=yes', `${LOCAL_USER}@web1.test.example`, 'echo', 'home-$((6*8))'], bareEnv(defaultHome));
  assert.equal(viaDefault.code, 0, viaDefault.stderr);
  assert.equal(viaDefault.stdout, 'home-48\n');
});

test('an expired certificate: ssh through the ProxyCommand logs in again on the terminal and goes on through the agent, same key', { skip: noScript }, async () => {
  const { cfg, home, before } = await expired('relogin', 'eve');
  const certPath = userFiles(eve, 'eve').cert;
  const r = await onTerminal(`ssh -F ${cfg} ${LOCAL_USER}@web1.test.example echo relogin-'$((6*7))'`, bareEnv(home, agentSock), 'eve');
  assert.match(r.out, /expired at/);
  assert.ok(r.answered.has('password') && r.answered.has('otp'), r.out);
  assert.match(r.out, /relogin-42/, `${r.out}\n--- sshd ---\n${c.nodes.get('web1')!.log().slice(-2000)}`);
  assert.equal(r.code, 0, r.out);
  const renewed = parseCertificate(readFileSync(certPath, 'utf8'));
  assert.ok(renewed.validBefore.getTime() > Date.now() + 3600_000, 'a fresh certificate was stored');
  assert.ok(renewed.subjectPublicKey.equals(before.subjectPublicKey), 'for the same key pair');
});

test('an expired certificate and no agent: the ProxyCommand logs in again, says to run ssh again (255), and the run again works', { skip: noScript }, async () => {
  const { cfg, home } = await expired('relogin-noagent', 'fay');
  const r = await onTerminal(`ssh -F ${cfg} ${LOCAL_USER}@web1.test.example echo never`, bareEnv(home), 'fay');
  assert.equal(r.code, 255, r.out);
  assert.ok(r.answered.has('otp'), r.out);
  assert.match(r.out, /logged in again, but this ssh read the expired certificate .*: run the ssh command again/);
  assert.match(r.out, /hint: With an ssh-agent running/);
  const again = await runDetached('ssh', ['-F', cfg, '-o', 'BatchMode=yes', `${LOCAL_USER}@web1.test.example`, 'echo', 'again-$((5*5))'], bareEnv(home));
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'again-25\n');
});

test('an expired certificate and ssh with IdentitiesOnly yes: the ProxyCommand logs in again, then says exactly why ssh cannot go on (255)', { skip: noScript }, async () => {
  const { cfg, home } = await expired('relogin-only', 'gus');
  // Without the check ssh would end in "Permission denied (publickey)" and nobody would know why.
  const r = await onTerminal(`ssh -o IdentitiesOnly=yes -F ${cfg} ${LOCAL_USER}@web1.test.example echo never`, bareEnv(home, agentSock), 'gus');
  assert.equal(r.code, 255, r.out);
  assert.ok(r.answered.has('otp'), r.out);
  assert.match(r.out, /its config has IdentitiesOnly yes for this host, so it does not take the new certificate from the ssh-agent: run the ssh command again/);
  assert.match(r.out, /hint: To go on without running it again next time, drop IdentitiesOnly/);
  assert.doesNotMatch(r.out, /never/);
  const again = await runDetached('ssh', ['-o', 'IdentitiesOnly=yes', '-F', cfg, '-o', 'BatchMode=yes', `${LOCAL_USER}@web1.test.example`, 'echo', 'only-$((4*4))'], bareEnv(home));
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'only-16\n');
});

test('an expired certificate and ssh with IdentityAgent (no SSH_AUTH_SOCK): the new certificate goes into that agent and ssh goes on', { skip: noScript }, async () => {
  const { cfg, home } = await expired('relogin-identityagent', 'hal');
  const r = await onTerminal(`ssh -o IdentityAgent=${agentSock} -F ${cfg} ${LOCAL_USER}@web1.test.example echo agent-'$((8*8))'`, bareEnv(home), 'hal');
  assert.ok(r.answered.has('otp'), r.out);
  assert.match(r.out, /agent-64/, r.out);
  assert.equal(r.code, 0, r.out);
});

test('an expired certificate: postern ssh logs in again on the terminal and goes on', { skip: noScript }, async () => {
  expireCertificateFile(c.serve.dataDir, userFiles(homes.ivy, 'ivy').cert);
  const cmd = `env TSH_HOME=${homes.ivy} POSTERN_FROM_SOURCE=1 NO_COLOR=1 ${process.execPath} ${POSTERN_BIN} ssh ${LOCAL_USER}@web1 echo pssh-'$((7*7))'`;
  const r = await onTerminal(cmd, { ...process.env, TERM: 'dumb' }, 'ivy');
  assert.match(r.out, /expired at/);
  assert.ok(r.answered.has('otp'), r.out);
  assert.match(r.out, /pssh-49/);
  assert.equal(r.code, 0, r.out);
});
