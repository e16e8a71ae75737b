/** Small TCP helpers for forwarding tests. */
import { connect as netConnect } from 'node:net';

/** Sends bytes to 127.0.0.1:port and reads as many back. */
export function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    let n = 0;
    sock.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= data.length) { sock.end(); resolve(Buffer.concat(got)); }
    });
    sock.on('error', reject);
    sock.on('close', () => { if (n < data.length) reject(new Error(`closed after ${n} of ${data.length} bytes`)); });
    sock.write(data);
  });
}
