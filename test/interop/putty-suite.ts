/**
 * PuTTY's plink and pscp (Debian's putty-tools, 0.78) through Postern, in one mode, as the
 * README's "Other clients" section says: the OpenSSH key and certificate made into one
 * `.ppk` with `puttygen KEY -o KEY.ppk --certificate KEY-cert.pub`, the cluster's host CA
 * in PuTTY's host CA store (a file under $PUTTYSSHHOSTCAS), and the node login written into
 * the proxy command (`-proxycmd "postern proxy ssh LOGIN@%host:%port"`: PuTTY's `%user` is
 * the proxy's user, not the login). Recording mode needs the agent forwarded: plink -A
 * does; pscp turns forwarding off whatever its settings say, so it is refused there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sha256, LOCAL_USER } from './harness.ts';
import type { Interop, Mode } from './harness.ts';

/** Registers, on a started cluster, the PuTTY tests against one cluster in `mode`. */
export function puttySuite(it: Interop): void {
  const mode: Mode = it.mode;
  let ppk = '';
  let home = '';
  // Made on first use, once the file's cluster is up (its before hook).
  let ready: Promise<void> | undefined;
  const setup = (): Promise<void> => (ready ??= (async () => {
    ppk = `${it.key}.ppk`;
    execFileSync('puttygen', [it.key, '-o', ppk, '--certificate', it.cert]);
    // PuTTY's settings live in ~/.putty: a host CA (the cluster's, from known_hosts).
    home = join(it.c.work, 'putty-home');
    const cas = join(home, '.putty', 'sshhostcas');
    mkdirSync(cas, { recursive: true });
    const ca = readFileSync(it.knownHosts, 'utf8').split('\n').find((l) => l.startsWith('@cert-authority '));
    assert.ok(ca, 'the host CA line in known_hosts');
    writeFileSync(join(cas, 'postern-test.example'), `PublicKey=${ca.split(' ')[3]}\nValidity=*.test.example\n`);
  })());

  const env = (): NodeJS.ProcessEnv => it.env({ HOME: home });
  const proxycmd = (): string[] => ['-proxycmd', it.proxyCommand(LOCAL_USER, '%host', '%port')];
  const common = (): string[] => ['-batch', '-i', ppk, ...proxycmd()];

  test(`${mode}: plink with a .ppk holding the certificate: output and exit status 3`, async () => {
    await setup();
    const r = await run('plink', [...common(), ...(mode === 'recording' ? ['-A'] : []), '-l', LOCAL_USER, 'web1.test.example', 'echo plink-$((6*7)); exit 3'], { env: env() });
    assert.equal(r.status, 3, r.stderr + it.tail());
    assert.equal(r.stdout.trim(), 'plink-42');
    assert.doesNotMatch(r.stderr, /host key is not cached|POTENTIAL SECURITY BREACH/);
    await it.expectNodeEvents();
  });

  test(`${mode}: pscp over SFTP and SCP, sha256 intact (recording mode: refused with the agent forwarding hint)`, async () => {
    await setup();
    for (const proto of ['-sftp', '-scp']) {
      const dest = join(it.c.work, `pscp${proto}.bin`);
      const r = await run('pscp', ['-q', ...common(), proto, it.file, `${LOCAL_USER}@web1.test.example:${dest}`], { env: env() });
      if (mode === 'recording') {
        // pscp turns agent forwarding off whatever the settings say, and recording mode
        // logs in to the node through the forwarded agent: a clear refusal, not a hang.
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /needs agent forwarding/);
        continue;
      }
      assert.equal(r.status, 0, `${proto}: ${r.stderr}${it.tail()}`);
      assert.equal(sha256(dest), it.fileSum);
    }
    if (mode === 'default') await it.expectNodeEvents(2);
  });
}
