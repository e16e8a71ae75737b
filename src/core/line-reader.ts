/** Reading one newline-terminated line off a socket, for small handshakes (the TLS tunnel's request and answer). */
import type { Socket } from 'node:net';

/**
 * Resolves with the first line (without the newline) and whatever bytes came after it,
 * leaving the socket paused; rejects when the socket ends or fails first, when `maxBytes`
 * pass without a newline, or after `timeoutMs`. `what` names the line in those errors.
 */
export function readLine(sock: Socket, opts: { timeoutMs: number; maxBytes: number; what: string }): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error, value?: { line: string; rest: Buffer }): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onError);
      sock.pause();
      if (err) reject(err); else resolve(value!);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) done(undefined, { line: buf.subarray(0, nl).toString('utf8'), rest: buf.subarray(nl + 1) });
      else if (buf.length > opts.maxBytes) done(new Error(`the ${opts.what} is longer than ${opts.maxBytes} bytes`));
    };
    const onEnd = (): void => done(new Error(`the connection closed before the ${opts.what}`));
    const onError = (err: Error): void => done(err);
    const timer = setTimeout(() => done(new Error(`no ${opts.what} within ${opts.timeoutMs / 1000}s`)), opts.timeoutMs);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('error', onError);
  });
}
