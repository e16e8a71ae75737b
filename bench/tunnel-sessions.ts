/**
 * Row 4b of `npm run bench` (BENCH_ONLY=…,tunnel5k) and `node bench/sessions-tunnel.ts`:
 * many sessions (5,000 by default) held open at once through one proxy's TLS tunnel (the
 * transport of `postern ssh` and the ProxyCommand), opened a batch at a time, then each must
 * echo a line back. The node side is a small TCP echo server in the benchmark's process,
 * registered as a node with `postern nodes add`: it stands in for sshd, which at 5,000
 * connections would need 10,000 sshd processes on a 2-core machine (row 4 holds its 500
 * sessions on real sshd). The proxy's side — TLS, the signed request, auth's checks, the
 * dial, the pipe — is the real one. Measures the proxy's RSS growth per session
 * (least-squares slope over the batches) and its CPU per session.
 *
 * Every session comes from one user at 127.0.0.1, where in use they come from many users on
 * many machines; two flood defences would refuse most of them, so for this section only:
 * the serve is started with a per-source cap on the web port above the count
 * ({@link tunnelServeArgs}; the default is 100 connections per address), and the cluster
 * settings signed_rate_per_user (600 a minute) and signed_rate_per_source (3,000) are
 * raised to a million a minute — not turned off, so the throttle's buckets still run —
 * and put back afterwards.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { loadLogin } from '../src/client/stored-login.ts';
import { nodeAccess, openNodeLink } from '../src/client/node-access.ts';
import type { NodeLink } from '../src/client/node-access.ts';
import { cpuMs, statusKb } from './proc.ts';
import type { BenchEnv } from './setup.ts';
import { slope } from './stats.ts';

/** What the node side is, said with every result: the row is not on sshd. */
export const TUNNEL_NODE_SIDE = 'a TCP echo server in the benchmark process standing in for sshd (not sshd)';

/** What row 4b measured, as written to bench/results/latest.json. */
export interface TunnelResult {
  nodeSide: string;
  target: number;
  batch: number;
  opened: number;
  failed: number;
  /** Sessions that echoed a line back after all were open. */
  alive: number;
  /** Connections the echo server held when all were open (one per session). */
  nodeSideConnections: number;
  openSeconds: number;
  /** Proxy (serve) RSS in KiB before the first session and with all open. */
  rssBeforeKb: number;
  rssWithKb: number;
  /** Proxy RSS after each batch: sessions open so far, RSS in KiB. */
  steps: Array<{ open: number; rssKb: number }>;
  /** KiB per session: the least-squares slope of the proxy's RSS over sessions open, batch by batch. */
  perSessionRssKb: number;
  /** KiB per session: (with − before) / opened. */
  deltaRssKb: number;
  /** The proxy's CPU (user + system) while opening, per session opened, ms. */
  cpuOpenMsPerSession: number;
  /** The proxy's CPU while every session echoed one line, per session, ms. */
  cpuEchoMsPerSession: number;
  /** True when the section's deadline cut the opening short. */
  cutShort: boolean;
  /** Why sessions failed to open or echo: each reason once, with how many times (`200× open: …`). */
  failures: string[];
}

/** The throttle's limits while the section runs: far above any count, still counted. */
const RAISED_RATE = '1000000';
const RATE_KEYS = ['signed_rate_per_user', 'signed_rate_per_source'] as const;

/** The serve flags the section needs: every session comes from 127.0.0.1. */
export function tunnelServeArgs(n: number): string[] {
  return ['--web-max-connections-per-source', String(n + 200)];
}

/**
 * Registers the echo stand-in as a node, holds `n` sessions through the TLS tunnel opened
 * `batch` at a time, checks every one echoes, and lets them all go. Stops opening when
 * `deadlineMs` has passed (the rest count as failed, `cutShort` says so); every open and
 * echo has its own time limit.
 */
export async function holdTunnelSessions(env: BenchEnv, n: number, batch: number, log: (s: string) => void, deadlineMs = 300_000): Promise<TunnelResult> {
  const until = Date.now() + deadlineMs;
  const peers = new Set<Socket>();
  const echo = createServer((s) => { peers.add(s); s.on('close', () => peers.delete(s)); s.on('error', () => {}); s.pipe(s); });
  await new Promise<void>((resolve, reject) => { echo.once('error', reject); echo.listen(0, '127.0.0.1', () => resolve()); });
  const links: NodeLink[] = [];
  const restore: Array<[string, string]> = [];
  const reasons = new Map<string, number>();
  const fail = (why: string, times = 1): void => { reasons.set(why, (reasons.get(why) ?? 0) + times); };
  const failures = (): string[] => [...reasons].map(([why, times]) => `${times}× ${why}`);
  try {
    const port = (echo.address() as { port: number }).port;
    const key = join(env.cluster.work, 'echo_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const add = await env.cluster.admin(['nodes', 'add', '--name', 'echo1', '--addr', `127.0.0.1:${port}`, '--labels', 'env=bench', '--host-key-file', `${key}.pub`, '--out', join(env.cluster.work, 'echo1')]);
    if (add.code !== 0) throw new Error(`nodes add echo1: ${add.stderr}`);
    const shown = await env.cluster.admin(['settings', 'show', '--format', 'json']);
    if (shown.code !== 0) throw new Error(`settings show: ${shown.stderr}`);
    const settings = JSON.parse(shown.stdout) as Record<(typeof RATE_KEYS)[number], number>;
    for (const k of RATE_KEYS) {
      const set = await env.cluster.admin(['settings', 'set', k, RAISED_RATE]);
      if (set.code !== 0) throw new Error(`settings set ${k}: ${set.stderr}`);
      restore.push([k, String(settings[k])]);
    }
    const access = nodeAccess(loadLogin(env.home), env.login, { POSTERN_PROXY_TRANSPORT: 'tls' }, () => new Date());

    const rssBeforeKb = statusKb(env.servePid, 'VmRSS');
    const steps: TunnelResult['steps'] = [{ open: 0, rssKb: rssBeforeKb }];
    const cpu0 = cpuMs(env.servePid);
    const t0 = Date.now();
    let failed = 0;
    let cutShort = false;
    for (let i = 0; i < n; i += batch) {
      if (Date.now() > until) {
        cutShort = true;
        failed += n - i;
        fail(`not tried: the section's deadline (${deadlineMs / 1000} s) passed`, n - i);
        break;
      }
      const got = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => openNodeLink(access, 'echo1', port)));
      for (const g of got) {
        if (g.status === 'fulfilled') links.push(g.value);
        else { failed++; fail(`open: ${g.reason instanceof Error ? g.reason.message : String(g.reason)}`); }
      }
      steps.push({ open: links.length, rssKb: statusKb(env.servePid, 'VmRSS') });
      if ((i / batch) % 10 === 9) log(`  tunnel: ${links.length}/${n} open, ${failed} failed, proxy RSS ${(steps[steps.length - 1].rssKb / 1024).toFixed(0)} MiB`);
    }
    const openSeconds = (Date.now() - t0) / 1000;
    const cpuOpen = cpuMs(env.servePid) - cpu0;
    const rssWithKb = statusKb(env.servePid, 'VmRSS');
    const nodeSideConnections = peers.size;

    // Every session echoes a line: none was dropped.
    const cpu1 = cpuMs(env.servePid);
    let alive = 0;
    for (let i = 0; i < links.length; i += 500) {
      const oks = await Promise.all(links.slice(i, i + 500).map((l, k) => new Promise<boolean>((resolve) => {
        const want = `ping-${i + k}\n`;
        let got = '';
        const done = (ok: boolean): void => { clearTimeout(timer); l.stream.off('data', onData); l.stream.off('close', onClose); resolve(ok); };
        const timer = setTimeout(() => { fail('echo: no answer in 30 s'); done(false); }, 30_000);
        const onData = (d: Buffer): void => { got += d.toString(); if (got === want) done(true); };
        const onClose = (): void => { fail('echo: the session closed'); done(false); };
        l.stream.on('data', onData);
        l.stream.once('close', onClose);
        l.stream.resume();
        l.stream.write(want);
      })));
      alive += oks.filter(Boolean).length;
    }
    const cpuEcho = cpuMs(env.servePid) - cpu1;
    log(`  tunnel: ${links.length} opened in ${openSeconds.toFixed(1)} s, ${failed} failed, ${alive} echoed; echo server held ${nodeSideConnections}`);
    for (const f of failures()) log(`  tunnel: failed: ${f}`);
    return {
      nodeSide: TUNNEL_NODE_SIDE, target: n, batch, opened: links.length, failed, alive, nodeSideConnections, openSeconds,
      rssBeforeKb, rssWithKb, steps,
      perSessionRssKb: slope(steps.map((s) => s.open), steps.map((s) => s.rssKb)),
      deltaRssKb: (rssWithKb - rssBeforeKb) / Math.max(1, links.length),
      cpuOpenMsPerSession: cpuOpen / Math.max(1, links.length),
      cpuEchoMsPerSession: cpuEcho / Math.max(1, links.length),
      cutShort, failures: failures(),
    };
  } finally {
    for (const l of links) l.close();
    for (const p of peers) p.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
    for (const [k, v] of restore) {
      const set = await env.cluster.admin(['settings', 'set', k, v]);
      if (set.code !== 0) log(`  tunnel: could not put ${k} back to ${v}: ${set.stderr.trim()}`);
    }
  }
}
