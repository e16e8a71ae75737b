/** Small TCP helpers for tests: round trips through forwards, ports for what cannot take port 0, and connections counted. */
import { connect as netConnect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { readFileSync } from 'node:fs';

/** Sends bytes to 127.0.0.1:port and reads as many back; fails after `timeoutMs` saying how far it got. */
export function roundTrip(port: number, data: Buffer, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    let n = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`round trip through port ${port}: ${n} of ${data.length} bytes back after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= data.length) { clearTimeout(timer); sock.end(); resolve(Buffer.concat(got)); }
    });
    sock.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      // A peer that destroys a connection with our bytes unread resets it: for the caller, that is closing it too.
      reject(err.code === 'ECONNRESET' && n < data.length ? new Error(`closed after ${n} of ${data.length} bytes (reset)`, { cause: err }) : err);
    });
    sock.on('close', () => { clearTimeout(timer); if (n < data.length) reject(new Error(`closed after ${n} of ${data.length} bytes`)); });
    sock.write(data);
  });
}

/** Says a port was taken, so `withFreshPort` tries another. */
export class PortInUseError extends Error {
  /** As Node's own listen error says it. */
  readonly code = 'EADDRINUSE';
}

/**
 * A port that was free on 127.0.0.1 a moment ago (bound to 0 and released). Another process
 * may take it before it is used, so only `withFreshPort`, which retries, hands it out.
 */
function recentlyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts something that must be told its port before it runs (sshd's `Port`, `ssh -L`),
 * on a port that was just free; when `start` throws an error with code EADDRINUSE (the port
 * was taken meanwhile) it tries again on another, a few times. What we start ourselves
 * listens on port 0 and reads the port back instead.
 */
export async function withFreshPort<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    const port = await recentlyFreePort();
    try {
      return await start(port);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || i >= attempts) throw err;
    }
  }
}

/** The port a listening server got (after `listen(0, …)`). */
export function boundPort(server: Server): number {
  const a = server.address();
  if (!a || typeof a !== 'object') throw new Error('the server is not listening on a TCP port');
  return a.port;
}

/** Established TCP connections whose local port is `port` (the server side), from /proc/net/tcp{,6}. */
export function establishedOn(port: number): number {
  let n = 0;
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[1].endsWith(`:${hex}`) && f[3] === '01') n++;
    }
  }
  return n;
}
