/**
 * Python's SSH libraries from Debian through Postern, in one mode: paramiko through the
 * ProxyCommand and asyncssh through the listener as a jump host, each with the key and
 * certificate from files and with the certificate in the agent (recording mode forwards the
 * agent, which the proxy needs). Each checks a command's exit status, an SFTP upload's
 * sha256 and the audit event. paramiko tries the agent's plain key first, is refused, and
 * asks for the ssh-userauth service again before its next key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, sha256, PYTHON, LOCAL_USER } from './harness.ts';
import type { Interop, Mode } from './harness.ts';

const CLIENTS = join(import.meta.dirname, 'clients');

/** Registers, on a started cluster, the paramiko and asyncssh tests against one cluster in `mode`. */
export function pythonSuite(it: Interop): void {
  const mode: Mode = it.mode;
  const forward = mode === 'recording' ? ['--forward-agent'] : [];

  /** paramiko pins the host key the node shows: the node's own, or the proxy's in recording mode. */
  const hostKey = async (): Promise<string> => {
    if (mode === 'default') return readFileSync(`${it.c.nodes.get('web1')!.hostKey}.pub`, 'utf8').trim();
    const line = readFileSync(it.knownHosts, 'utf8').split('\n').find((l) => l.startsWith(`[127.0.0.1]:${it.c.sshPort} `));
    assert.ok(line, 'the proxy key in known_hosts');
    return line.split(' ').slice(1, 3).join(' ');
  };

  const paramiko = async (auth: string[], rest: string[]) => run(PYTHON, [join(CLIENTS, 'paramiko_client.py'),
    '--host', 'web1.test.example', '--login', LOCAL_USER, '--proxy-command', it.proxyCommand(LOCAL_USER, 'web1.test.example', '22'),
    '--host-key', await hostKey(), ...auth, ...rest], { env: it.env() });

  const asyncssh = (auth: string[], rest: string[]) => run(PYTHON, [join(CLIENTS, 'asyncssh_client.py'),
    '--proxy-port', String(it.c.sshPort), '--proxy-user', 'alice', '--node', 'web1', '--login', LOCAL_USER,
    '--known-hosts', it.knownHosts, ...auth, ...rest], { env: it.env() });

  for (const [name, client] of [['paramiko', paramiko], ['asyncssh', asyncssh]] as const) {
    for (const how of ['key files', 'the agent'] as const) {
      test(`${mode}: ${name} with ${how}: exit status 3, an SFTP upload intact, the audit event`, async () => {
        // asyncssh pairs the agent's key with the certificate file (see asyncssh_client.py).
        const auth = how === 'key files' ? ['--key', it.key, '--cert', it.cert] : name === 'asyncssh' ? ['--agent', '--cert', it.cert] : ['--agent'];
        // Recording mode forwards the agent even with key files: the proxy signs through it.
        const a = [...auth, ...forward];
        const cmd = await client(a, ['--command', 'echo py-$((6*7)); exit 3']);
        assert.equal(cmd.status, 3, cmd.stderr + it.tail());
        assert.equal(cmd.stdout.trim(), 'py-42');
        const dest = join(it.c.work, `${name}-${how.replace(' ', '-')}.bin`);
        const put = await client(a, ['--put', it.file, dest]);
        assert.equal(put.status, 0, put.stderr + it.tail());
        assert.equal(sha256(dest), it.fileSum);
        await it.expectNodeEvents(2);
      });
    }
  }
}
