/**
 * The one pipe (src/core/pipe.ts) with real sockets: a TLS server socket on one side, as
 * the tunnel accepts it, and a TCP socket it dialled on the other. Past the bulk threshold
 * its reads go into pooled buffers that are reused once written; these tests check that the
 * pool really takes over on both kinds of socket (so a Node upgrade that moves its internals
 * fails here, not silently in the benchmarks), that no buffer is reused while a slow reader
 * still holds its bytes in flight (sha256 of everything both ways), and that a reader that
 * stops never makes the pipe queue more than its bound.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeBoth, readPoolSizes, MAX_QUEUED_BYTES } from '../../src/core/pipe.ts';
import { createTlsCa } from '../../src/auth/tls-ca.ts';
import { keystream, keystreamSha256 } from '../helpers/relay.ts';
import { waitFor } from '../helpers/wait.ts';

const MIB = 24;
let tlsServer: TlsServer;
let sink: Server;
/** What the test does with the node's side of the next relayed connection. */
let onNode: (s: Socket) => void = () => {};
/** The proxy's two sockets of the last relayed connection. */
let relayed: { client: TLSSocket; node: Socket } | undefined;

before(async () => {
  const ca = await createTlsCa('pipe-test', new Date());
  sink = createServer((s) => onNode(s));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkPort = (sink.address() as { port: number }).port;
  tlsServer = createTlsServer({ cert: ca.certPem, key: ca.keyPem }, (client) => {
    const node = netConnect(sinkPort, '127.0.0.1', () => {
      relayed = { client, node };
      pipeBoth(client, node);
    });
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
});

after(() => {
  tlsServer.close();
  sink.close();
});

function dial(): Promise<TLSSocket> {
  const port = (tlsServer.address() as { port: number }).port;
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Hashes what `s` delivers, pausing for 20 ms after every MiB, as a slow reader does. */
function slowHash(s: Readable): Promise<{ sha: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  let mark = 1 << 20;
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      if (bytes >= mark) {
        mark += 1 << 20;
        s.pause();
        setTimeout(() => s.resume(), 20);
      }
    });
    s.once('end', () => resolve({ sha: h.digest('hex'), bytes }));
    s.once('error', reject);
  });
}

test(`${MIB} MiB from the TLS side arrive intact at a slow reader, read into pooled 16 KiB buffers`, async () => {
  const before16 = readPoolSizes()[16384] ?? 0;
  const got = new Promise<{ sha: string; bytes: number }>((resolve, reject) => {
    onNode = (s) => { slowHash(s).then(resolve, reject); };
  });
  const client = await dial();
  keystream(MIB).pipe(client);
  const { sha, bytes } = await got;
  assert.equal(bytes, MIB << 20);
  assert.equal(sha, keystreamSha256(MIB), 'the node side received other bytes');
  client.destroy();
  assert.ok((readPoolSizes()[16384] ?? 0) > before16, `the TLS socket's reads never went into the pool: ${JSON.stringify(readPoolSizes())}`);
});

test(`${MIB} MiB from the TCP side arrive intact at a slow TLS reader, read into pooled 64 KiB buffers`, async () => {
  const before64 = readPoolSizes()[65536] ?? 0;
  onNode = (s) => { keystream(MIB).pipe(s); };
  const client = await dial();
  const { sha, bytes } = await slowHash(client);
  assert.equal(bytes, MIB << 20);
  assert.equal(sha, keystreamSha256(MIB), 'the client received other bytes');
  client.destroy();
  assert.ok((readPoolSizes()[65536] ?? 0) > before64, `the TCP socket's reads never went into the pool: ${JSON.stringify(readPoolSizes())}`);
});

test('a reader that stops leaves at most the bound queued in the pipe, and reading on gets every byte', async () => {
  let sent = 0;
  let node: Socket | undefined;
  onNode = (s) => {
    node = s;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const pump = (): void => {
      while (sent < 64 << 20) {
        sent += chunk.length;
        if (!s.write(chunk)) { s.once('drain', pump); return; }
      }
      s.end();
    };
    pump();
  };
  const client = await dial();
  client.pause();
  // Kernel buffers fill, then the pipe's queue; then the node's writes stop.
  let last = -1;
  await waitFor(async () => {
    const now = sent;
    const still = now === last;
    last = now;
    await new Promise((r) => setTimeout(r, 200));
    return still && now > 0;
  }, { what: 'the node to be held back', timeoutMs: 30_000 });
  assert.ok(relayed, 'the proxy relayed the connection');
  const queued = relayed.client.writableLength;
  assert.ok(queued <= MAX_QUEUED_BYTES + 64 * 1024, `the pipe queued ${queued} bytes for a reader that stopped`);
  assert.ok(sent < 64 << 20, 'the node was never held back');
  let bytes = 0;
  const ended = new Promise((r) => client.once('end', r));
  client.on('data', (d: Buffer) => { bytes += d.length; });
  client.resume();
  await ended;
  assert.equal(bytes, 64 << 20);
  client.destroy();
  node?.destroy();
});
