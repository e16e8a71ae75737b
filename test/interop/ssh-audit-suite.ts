/**
 * The protocol surface. Debian's `ssh-audit` against the proxy's SSH
 * listener reports no failure that it does not also report against Debian's stock sshd
 * started here; neither the listener nor the recording proxy's own connection to a node
 * offers diffie-hellman-group-exchange (ssh2's server does not implement it) or plain
 * `zlib` (compression before authentication). The node connection's offer is read from
 * its KEXINIT by a fake node that speaks just enough SSH to receive it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import ssh2 from 'ssh2';
import type { Server, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, LOCAL_USER } from './harness.ts';
import { boundPort } from '../helpers/net.ts';
import type { Interop } from './harness.ts';
import { startSshd } from '../helpers/openssh.ts';
import { connectNodeWithAgent } from '../../src/proxy/node-client.ts';

/** Registers, on a started cluster, the protocol surface tests. */
export function sshAuditSuite(it: Interop): void {
/** Debian's stock sshd, started on first use (once the file's cluster is up). */
let stock: Promise<number> | undefined;
const stockPort = (): Promise<number> => (stock ??= (async () => {
  const sshd = await startSshd({ trustedUserCaKeys: readFileSync(join(it.c.nodes.get('web1')!.dir, 'user_ca.pub'), 'utf8') });
  it.c.onStop(() => sshd.stop());
  return sshd.port;
})());

/** ssh-audit's failures as "category algorithm: reason" lines, and its offered kex and compression. */
async function audit(port: number): Promise<{ fails: string[]; kex: string[]; compression: string[] }> {
  const text = await run('ssh-audit', ['-n', '-p', String(port), '127.0.0.1'], { timeoutMs: 30_000 });
  assert.match(text.stdout, /\(kex\)/, text.stdout + text.stderr);
  const fails: string[] = [];
  let current = '';
  for (const line of text.stdout.split('\n')) {
    const m = /^\((\w+)\)\s+(\S+)/.exec(line);
    if (m) current = `${m[1]} ${m[2]}`;
    const f = /\[fail\]\s+(.*)$/.exec(line);
    if (f && current) fails.push(`${current}: ${f[1].trim()}`);
  }
  const json = JSON.parse((await run('ssh-audit', ['-j', '-p', String(port), '127.0.0.1'], { timeoutMs: 30_000 })).stdout) as { kex: Array<{ algorithm: string }>; compression: string[] };
  return { fails, kex: json.kex.map((k) => k.algorithm), compression: json.compression };
}

test('ssh-audit: the listener fails nothing that Debian\'s stock sshd does not; no group exchange, no pre-auth zlib', async () => {
  const [proxy, stock] = [await audit(it.c.sshPort), await audit(await stockPort())];
  const extra = proxy.fails.filter((f) => !stock.fails.includes(f));
  assert.deepEqual(extra, [], `failures only the proxy has:\n${extra.join('\n')}\n(stock sshd: ${stock.fails.join('; ')})`);
  assert.ok(proxy.kex.some((k) => k.startsWith('curve25519-sha256')), proxy.kex.join(','));
  assert.equal(proxy.kex.some((k) => k.includes('group-exchange')), false, proxy.kex.join(','));
  assert.equal(proxy.compression.includes('zlib'), false, proxy.compression.join(','));
});

/** A fake node: sends a banner, reads the client's banner and KEXINIT, and hands over its name-lists. */
function fakeNode(): Promise<{ server: Server; port: number; kexinit: Promise<string[][]> }> {
  return new Promise((resolve) => {
    let got!: (lists: string[][]) => void;
    const kexinit = new Promise<string[][]>((r) => { got = r; });
    const server = createServer((sock: Socket) => {
      sock.write('SSH-2.0-OpenSSH_9.2 fake\r\n');
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const pkt = buf.subarray(eol + 2);
        if (pkt.length < 5 || pkt.length < 4 + pkt.readUInt32BE(0)) return;
        assert.equal(pkt[5], 20, 'KEXINIT');
        let off = 6 + 16;
        const lists: string[][] = [];
        for (let i = 0; i < 10; i++) {
          const len = pkt.readUInt32BE(off);
          lists.push(pkt.subarray(off + 4, off + 4 + len).toString().split(',').filter(Boolean));
          off += 4 + len;
        }
        got(lists);
        sock.destroy();
      });
      sock.on('error', () => {});
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: boundPort(server), kexinit }));
  });
}

test('the recording proxy\'s connection to a node offers no group exchange and no pre-auth zlib', async () => {
  const fake = await fakeNode();
  try {
    // The client the recording proxy logs in to nodes with, against a node that only reads.
    const sock = connect(fake.port, '127.0.0.1');
    // Never settles once the socket is gone (ssh2 does not notice an injected socket's
    // destruction before its handshake), so it is not awaited.
    void connectNodeWithAgent({
      sock, login: LOCAL_USER, agent: new ssh2.OpenSSHAgent('/nonexistent'), hostCaKeys: [], names: ['fake'], label: 'fake', timeoutMs: 10_000,
    }).catch(() => undefined);
    const lists = await Promise.race([fake.kexinit, new Promise<undefined>((r) => setTimeout(r, 10_000))]);
    assert.ok(lists, 'the fake node got no KEXINIT');
    const [kex, , , , , , compC2s, compS2c] = lists;
    sock.destroy();
    assert.ok(kex.some((k) => k.startsWith('curve25519-sha256')), kex.join(','));
    assert.equal(kex.some((k) => k.includes('group-exchange')), false, kex.join(','));
    assert.equal(compC2s.includes('zlib'), false, compC2s.join(','));
    assert.equal(compS2c.includes('zlib'), false, compS2c.join(','));
  } finally {
    fake.server.close();
  }
});
}
