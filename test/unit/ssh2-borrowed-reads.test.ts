/**
 * ssh2 patch 011 with readSshIntoPool (src/core/pipe.ts): once an SSH connection carries
 * bulk data, its socket is read into pooled buffers that are reused as soon as nothing
 * holds them, and ssh2 decrypts in place. These tests send tens of MiB through a real ssh2
 * client and server and compare sha256 on both ends, for each kind of consumer: the corked
 * pipe that borrows the buffers, a plain 'data' listener that keeps every chunk (it must
 * get copies, or later reads overwrite what it kept), and a consumer that pauses (the
 * channel buffers chunks, which must be copies too); with a rekey in the middle (the
 * KEXINIT is kept past the read) and for each kind of cipher (chacha20-poly1305, AES-GCM,
 * AES-CTR with an HMAC).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel, Connection, ServerChannel } from 'ssh2';
import { corkedPipe, poisonReleasedBuffers, readSshIntoPool } from '../../src/core/pipe.ts';

const MIB = 1024 * 1024;
// A view kept past its buffer's release then reads garbage, whatever the next read brings.
poisonReleasedBuffers(0xdb);
const TOTAL_MIB = 24;

type Consumer = 'pipe' | 'keeps-chunks' | 'pauses';

/** Reads what `ch` carries the way `consumer` does; resolves with its sha256 at the end. */
function consume(ch: ServerChannel, consumer: Consumer): Promise<string> {
  const hash = createHash('sha256');
  if (consumer === 'pipe') {
    // The proxy's own case: the corked pipe into a socket, which borrows the read buffers.
    return new Promise((resolve, reject) => {
      const sink = createServer((s) => {
        s.on('data', (d: Buffer) => hash.update(d));
        s.on('end', () => { sink.close(); resolve(hash.digest('hex')); });
      });
      sink.listen(0, '127.0.0.1', () => {
        const { port } = sink.address() as AddressInfo;
        const dst = new Socket();
        dst.connect(port, '127.0.0.1', () => corkedPipe(ch, dst));
        dst.on('error', reject);
      });
    });
  }
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let n = 0;
    ch.on('data', (d: Buffer) => {
      kept.push(d);
      // Stop now and then for longer than a few reads take: ssh2 buffers in the channel.
      if (consumer === 'pauses' && ++n % 50 === 0) {
        ch.pause();
        setTimeout(() => ch.resume(), 20);
      }
    });
    // Hashed only at the end: a chunk that was a view of a reused buffer has changed by now.
    ch.on('end', () => {
      for (const d of kept) hash.update(d);
      resolve(hash.digest('hex'));
    });
  });
}

async function transfer(cipher: string, consumer: Consumer): Promise<void> {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  let received!: Promise<string>;
  let pooled = false;
  let rekeyed = 0;
  const conns: Connection[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn: Connection) => {
    conns.push(conn);
    conn.on('error', () => {});
    const sock = (conn as unknown as { _sock: Socket })._sock;
    readSshIntoPool(sock, conn);
    const ssh2Reader = sock.listeners('data').length;
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('rekey', () => { rekeyed++; });
    conn.on('session', (accept) => {
      accept().on('exec', (acceptExec) => {
        const ch = acceptExec();
        received = consume(ch, consumer);
        received.then(() => {
          // ssh2's own 'data' reader is gone once the reads go to the pool.
          pooled = sock.listeners('data').length < ssh2Reader;
          ch.exit(0);
          ch.end();
        }, () => {});
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const client = new ssh2.Client();
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({ host: '127.0.0.1', port, username: 'u', algorithms: { cipher: [cipher] as never } });
    });
    // A connection that breaks (a kept view overwritten: a bad MAC, a failed key exchange)
    // fails the test at once instead of leaving it waiting.
    const broken = new Promise<never>((_resolve, reject) => {
      client.once('error', reject);
      client.once('close', () => reject(new Error('the connection closed before the consumer had everything')));
    });
    const unlessBroken = <T>(p: Promise<T>): Promise<T> => Promise.race([p, broken]);
    const ch = await new Promise<ClientChannel>((resolve, reject) => client.exec('sink', (err, c) => (err ? reject(err) : resolve(c))));
    ch.resume(); // the command's output (none) and exit status, so the channel can close
    const sent = createHash('sha256');
    const block = randomBytes(MIB);
    for (let i = 0; i < TOTAL_MIB; i++) {
      block.writeUInt32BE(i, 0);
      sent.update(block);
      // ssh2's Client has no rekey() of its own; its transport does.
      if (i === TOTAL_MIB / 2) (client as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
      // Several write sizes, so packets straddle reads in every way.
      for (let off = 0; off < MIB;) {
        const len = Math.min(MIB - off, [65536, 1000, 32768, 7][(i + off) % 4] ?? 65536);
        if (!ch.write(Buffer.from(block.subarray(off, off + len)))) await unlessBroken(new Promise((r) => ch.once('drain', r)));
        off += len;
      }
    }
    ch.end();
    const closed = new Promise((r) => ch.once('close', r));
    assert.equal(await unlessBroken(received), sent.digest('hex'), `${cipher}, ${consumer}: the bytes the server's consumer got differ from those sent`);
    await closed;
    assert.ok(pooled, 'the server read into the pool (else this test proves nothing)');
    assert.ok(rekeyed >= 1, 'the keys were exchanged again during the transfer');
  } finally {
    client.end();
    for (const conn of conns) conn.end();
    server.close();
  }
}

for (const cipher of ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes128-ctr']) {
  for (const consumer of ['pipe', 'keeps-chunks', 'pauses'] as const) {
    test(`${TOTAL_MIB} MiB intact through pooled reads: ${cipher}, consumer ${consumer}, rekey half-way`, { timeout: 120_000 }, async () => {
      await transfer(cipher, consumer);
    });
  }
}
