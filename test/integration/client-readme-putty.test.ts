/**
 * The README's PuTTY block ("Other clients"), as written, against a real cluster and a real
 * sshd node, with Debian's putty-tools (puttygen, plink, pscp 0.78): the logged-in key and
 * its certificate made into one .ppk, the cluster's host CA put into PuTTY's store from the
 * profile's known_hosts, plink running a command and pscp copying a file through the
 * `-proxycmd` that carries the node login. Each line runs with bash in a user's shell
 * (UserShell: HOME with ~/.tsh, `postern` on PATH); replaced, as the README says: the
 * proxy (its profile directory is 127.0.0.1 here), the cluster's name, the login, and the
 * destination directory of pscp (/tmp/ would be shared with everything else on the machine).
 * The interop suite (test/interop/putty-suite.ts) runs PuTTY in both recording modes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { UserShell, readmeBlock } from '../helpers/readme.ts';

const c = new TestCluster();
let shell: UserShell;
let dest = '';

/** What the README says to put in: the proxy, the cluster, the login; and pscp's destination. */
function localize(line: string): string {
  return line
    .replace(/proxy\.example\.com/g, '127.0.0.1')
    .replace(/example\.com/g, 'test.example')
    .replace(/\bubuntu@/g, `${LOCAL_USER}@`)
    .replace(/-l ubuntu\b/g, `-l ${LOCAL_USER}`)
    .replace(/:\/tmp\/$/, `:${dest}/`);
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

before(async () => {
  await c.start();
  const alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  await c.node('web1', 'env=prod');
  shell = new UserShell(c.work, { tsh: alice });
  dest = join(c.work, 'pscp-dest');
  mkdirSync(dest);
  // pscp's `file`: a few hundred KiB, more than one SSH window.
  writeFileSync(join(shell.cwd, 'file'), randomBytes(300 * 1024));
});

after(async () => {
  await c.stop();
});

test('README "Other clients", PuTTY: puttygen with the certificate, the host CA into PuTTY\'s store, plink and pscp through -proxycmd, as written', async () => {
  const lines = readmeBlock('Other clients').map((l) => l.command);
  const kinds = lines.map((l) => l.split(/\s+/)[0]);
  assert.deepEqual(kinds, ['puttygen', 'mkdir', 'printf', 'plink', 'pscp'], lines.join('\n'));
  const run = async (written: string): Promise<{ stdout: string; stderr: string }> => {
    const ran = localize(written);
    const r = await shell.run(ran);
    assert.equal(r.code, 0, `${written}\n  ran as: ${ran}\n${r.stdout}\n${r.stderr}\n--- serve ---\n${c.serve.stderr().slice(-1500)}`);
    return r;
  };
  const [puttygen, mkdir, printf, plink, pscp] = lines;

  await run(puttygen);
  const ppk = readFileSync(join(shell.cwd, 'postern.ppk'), 'utf8');
  assert.match(ppk, /^PuTTY-User-Key-File-3: ssh-ed25519-cert-v01@openssh\.com$/m, 'the .ppk holds the certificate');

  // Without the host CA, PuTTY cannot check the node's host certificate: it would ask (here,
  // with no one to answer, it gives up). That is what the next two lines are for.
  const unchecked = await shell.run(localize(plink).replace(/^plink /, 'plink -batch '));
  assert.notEqual(unchecked.code, 0, unchecked.stdout);
  assert.match(unchecked.stderr, /host key is not cached|not in the cache|Cannot confirm a host key in batch mode/i, unchecked.stderr);

  await run(mkdir);
  await run(printf);
  const store = readFileSync(join(shell.home, '.putty', 'sshhostcas', 'test.example'), 'utf8');
  const known = readFileSync(join(shell.home, '.tsh', 'keys', '127.0.0.1', 'known_hosts'), 'utf8');
  const caKey = known.split('\n').find((l) => l.startsWith('@cert-authority '))?.split(' ')[3];
  assert.ok(caKey, known);
  assert.equal(store, `PublicKey=${caKey}\nValidity=*.test.example\n`);

  const up = await run(plink);
  assert.match(up.stdout, /load average/);
  assert.doesNotMatch(up.stderr, /host key|POTENTIAL SECURITY BREACH/i, up.stderr);

  await run(pscp);
  const copied = join(dest, 'file');
  assert.ok(existsSync(copied), `pscp put ${copied}`);
  assert.equal(sha256(copied), sha256(join(shell.cwd, 'file')));

  // The proxy saw the node login the -proxycmd carries (PuTTY's %user would be the proxy's user).
  const audit = await c.admin(['audit', '--user', 'alice', '--type', 'session.proxy', '--format', 'json']);
  const events = JSON.parse(audit.stdout) as Array<{ node?: string; login?: string; success: boolean }>;
  assert.ok(events.filter((e) => e.node === 'web1' && e.login === LOCAL_USER && e.success).length >= 3, audit.stdout);
});
