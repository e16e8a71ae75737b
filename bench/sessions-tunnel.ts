/**
 * `node bench/sessions-tunnel.ts`: row 4b of `npm run bench` (BENCH_ONLY=tunnel5k) on its
 * own, in a cluster of its own (bench/tunnel-sessions.ts has the measurement):
 * BENCH_TUNNEL_SESSIONS (5000) sessions held open at once through one proxy's TLS tunnel,
 * opened BENCH_TUNNEL_BATCH (100) at a time, each to a TCP echo server standing in for sshd,
 * then each must echo a line back. Prints the rows as `npm run bench` does, then the result
 * as one JSON line. Stops itself after BENCH_DEADLINE_S (600).
 */
import { rowsTable, tunnelRows, tunnelTarget } from './report.ts';
import { buildBundle, setUp } from './setup.ts';
import { holdTunnelSessions, tunnelServeArgs } from './tunnel-sessions.ts';

const whole = (name: string, dflt: number): number => {
  const v = process.env[name];
  const x = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(x) || x < 1) throw new Error(`${name} must be a whole number above 0, not "${v}"`);
  return x;
};
const n = whole('BENCH_TUNNEL_SESSIONS', 5000);
const batch = whole('BENCH_TUNNEL_BATCH', 100);
const deadlineS = whole('BENCH_DEADLINE_S', 600);
const deadline = setTimeout(() => { process.stderr.write('[sessions] deadline passed: stopping\n'); process.exit(3); }, deadlineS * 1000);
const log = (s: string): void => { process.stderr.write(`[sessions] ${s}\n`); };

buildBundle();
const env = await setUp({ cli: 'bundle', loginUsers: 0, log, serveArgs: tunnelServeArgs(n) });
try {
  // Leave a minute of the deadline for the set-up's end and the clean-up.
  const t = await holdTunnelSessions(env, n, batch, log, Math.max(30, deadlineS - 60) * 1000);
  const target = tunnelTarget(t);
  process.stdout.write(`\n${rowsTable(tunnelRows(t))}\n\n${target.text}: ${target.measured} (${target.met ? 'met' : 'missed'})\n${JSON.stringify(t)}\n`);
  process.exitCode = target.met ? 0 : 1;
} finally {
  await env.stop();
  clearTimeout(deadline);
}
