/**
 * `node bench/sessions-tunnel.ts`: BENCH_TUNNEL_SESSIONS (5000) sessions held open at once
 * through one proxy's TLS tunnel (what `postern ssh` and the ProxyCommand use), opened
 * BENCH_BATCH (100) at a time, then each must echo a line back. The node side is a small
 * TCP echo server in this process, registered as a node with `postern nodes add`: it stands
 * in for sshd, which at 5,000 connections would need 5,000 sshd processes on a 2-core
 * machine (the 500-session row of `npm run bench` uses real sshd). Reports the proxy's RSS
 * growth per session (least-squares slope over the batches), its CPU per session opened,
 * and how many sessions survived. Stops itself after BENCH_DEADLINE_S (600).
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { loadLogin } from '../src/client/stored-login.ts';
import { nodeAccess, openNodeLink } from '../src/client/node-access.ts';
import type { NodeLink } from '../src/client/node-access.ts';
import { cpuMs, statusKb } from './proc.ts';
import { buildBundle, setUp } from './setup.ts';
import { slope } from './stats.ts';

const n = Number(process.env.BENCH_TUNNEL_SESSIONS ?? 5000);
const batch = Number(process.env.BENCH_BATCH ?? 100);
const deadline = setTimeout(() => { process.stderr.write('[sessions] deadline passed: stopping\n'); process.exit(3); }, Number(process.env.BENCH_DEADLINE_S ?? 600) * 1000);
const log = (s: string): void => { process.stderr.write(`[sessions] ${s}\n`); };

buildBundle();
const env = await setUp({ cli: 'bundle', loginUsers: 0, log });
const peers = new Set<Socket>();
const echo = createServer((s) => { peers.add(s); s.on('close', () => peers.delete(s)); s.pipe(s); });
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
const port = (echo.address() as { port: number }).port;
const key = join(env.cluster.work, 'echo_host_key');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
const add = await env.cluster.admin(['nodes', 'add', '--name', 'echo1', '--addr', `127.0.0.1:${port}`, '--labels', 'env=bench', '--host-key-file', `${key}.pub`, '--out', join(env.cluster.work, 'echo1')]);
if (add.code !== 0) throw new Error(add.stderr);

const access = nodeAccess(loadLogin(env.home), env.login, { POSTERN_PROXY_TRANSPORT: 'tls' }, () => new Date());
const links: NodeLink[] = [];
const xs: number[] = [];
const ys: number[] = [];
const rss0 = statusKb(env.servePid, 'VmRSS');
const cpu0 = cpuMs(env.servePid);
const t0 = Date.now();
let failed = 0;
try {
  xs.push(0); ys.push(rss0);
  for (let i = 0; i < n; i += batch) {
    const got = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => openNodeLink(access, 'echo1', port)));
    for (const g of got) if (g.status === 'fulfilled') links.push(g.value); else failed++;
    xs.push(links.length); ys.push(statusKb(env.servePid, 'VmRSS'));
    if ((i / batch) % 10 === 9) log(`${links.length}/${n} open, ${failed} failed, proxy RSS ${(ys[ys.length - 1] / 1024).toFixed(0)} MiB`);
  }
  const openS = (Date.now() - t0) / 1000;
  const cpuOpen = cpuMs(env.servePid) - cpu0;
  const rssN = statusKb(env.servePid, 'VmRSS');
  // Every session echoes a line: none was dropped.
  let alive = 0;
  for (let i = 0; i < links.length; i += 500) {
    const oks = await Promise.all(links.slice(i, i + 500).map((l, k) => new Promise<boolean>((resolve) => {
      const want = `ping-${i + k}\n`;
      let got = '';
      const timer = setTimeout(() => resolve(false), 30_000);
      const onData = (d: Buffer): void => { got += d.toString(); if (got === want) { clearTimeout(timer); l.stream.off('data', onData); resolve(true); } };
      l.stream.on('data', onData);
      l.stream.resume();
      l.stream.write(want);
    })));
    alive += oks.filter(Boolean).length;
  }
  process.stdout.write(`\n| Sessions | opened | alive (echoed) | open time | proxy RSS per session (slope) | proxy RSS growth / n | proxy CPU per session opened | node-side connections |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n`);
  process.stdout.write(`| ${n} | ${links.length} (${failed} failed) | ${alive} | ${openS.toFixed(0)} s | ${slope(xs, ys).toFixed(1)} KiB | ${((rssN - rss0) / n).toFixed(1)} KiB | ${(cpuOpen / Math.max(1, links.length)).toFixed(2)} ms | ${peers.size} |\n`);
} finally {
  for (const l of links) l.close();
  echo.close();
  await env.stop();
  clearTimeout(deadline);
}
