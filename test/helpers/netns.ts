/**
 * A private network namespace (`unshare -n`, which needs root): a loopback of its own, so a
 * documented `postern serve` line can bind the default ports (3080, 3023, 3025, 3021) as
 * written without taking them from the machine. Commands enter it with `nsenter --net`.
 * A process inside reaches one outside only through a Unix socket (those are not per
 * namespace): `bridgeInto` carries a TCP port inside to a TCP address outside that way.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

/** Why no namespace can be made here, or false when one can. */
export function netnsUnavailable(): string | false {
  const r = spawnSync('unshare', ['-n', 'true'], { stdio: 'pipe' });
  if (r.error) return `no unshare (util-linux): ${r.error.message}`;
  if (r.status !== 0) return `unshare -n is not allowed here (it needs root): ${String(r.stderr).trim()}`;
  return false;
}

/** A namespace kept alive by a sleeping process. */
export interface Netns {
  /** The words that run a command inside: `nsenter --net=/proc/PID/ns/net --`. */
  enter: string[];
  /** Listens on 127.0.0.1:`port` inside and carries each connection to `target` (HOST:PORT) outside. */
  bridgeInto(port: number, target: string): Promise<void>;
  stop(): Promise<void>;
}

/** Makes a namespace with its loopback up. */
export async function startNetns(): Promise<Netns> {
  const holder = spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  const own = readlinkSync('/proc/self/ns/net');
  const nsPath = `/proc/${holder.pid}/ns/net`;
  // unshare replaces itself with sleep once the namespace is made.
  await waitFor(() => { try { return readlinkSync(nsPath) !== own; } catch { return false; } }, { what: 'the new network namespace', timeoutMs: 10_000 });
  const enter = ['nsenter', `--net=${nsPath}`, '--'];
  const up = spawnSync(enter[0], [...enter.slice(1), 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  if (up.status !== 0) throw new Error(`ip link set lo up: ${String(up.stderr)}`);
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  return {
    enter,
    async bridgeInto(port, target) {
      const sock = join(mkdtempSync(join(tmpdir(), 'postern-netns-')), 'bridge.sock');
      const [host, p] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
      const outside = createServer((s) => {
        const t = createConnection(p, host);
        s.pipe(t).pipe(s);
        s.on('error', () => t.destroy());
        t.on('error', () => s.destroy());
      });
      await new Promise<void>((resolve) => outside.listen(sock, resolve));
      servers.push(outside);
      const script = `const net = require('node:net');
net.createServer((s) => {
  const u = net.createConnection(process.argv[1]);
  s.pipe(u).pipe(s);
  s.on('error', () => u.destroy());
  u.on('error', () => s.destroy());
}).listen(${port}, '127.0.0.1', () => console.log('listening'));`;
      const inside = spawn(enter[0], [...enter.slice(1), process.execPath, '-e', script, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(inside);
      let said = '';
      inside.stdout.on('data', (d) => { said += String(d); });
      inside.stderr.on('data', (d) => { said += String(d); });
      await waitFor(() => said.includes('listening') || (inside.exitCode !== null && Promise.reject(new Error(said))), { what: `the bridge on 127.0.0.1:${port} in the namespace`, timeoutMs: 10_000, detail: () => said });
    },
    async stop() {
      for (const c of children) c.kill('SIGKILL');
      for (const s of servers) s.close();
      holder.kill('SIGKILL');
      await exited;
    },
  };
}
