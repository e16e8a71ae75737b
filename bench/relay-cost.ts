/**
 * `node bench/relay-cost.ts`: what relaying one MiB costs the proxy, path by path, in
 * measures a loaded machine does not move much: the serve process's CPU time per MiB
 * (and the jump host sshd's, the reference), its system calls per MiB (perf's syscall
 * tracepoints: reads, writes, writevs), the major (mark-compact) garbage collections per
 * GiB (serve runs with a preload that turns on V8's --trace-gc), and its peak RSS.
 * Rounds alternate the paths; each cell is the median of the rounds.
 *
 * Settings: BENCH_MIB (128), BENCH_ROUNDS (3), RELAY_PATHS (b,c,d,e), RELAY_DIRECTION
 * (up: client to node, `cat > /dev/null`; down: node to client, `head -c … /dev/zero`),
 * RELAY_WARM_SESSIONS (0: how many `… true` sessions each path opens and closes first, as
 * `npm run bench`'s setup row does before its throughput row), RELAY_V8_FLAGS (more V8 flags
 * for serve, set by its preload: e.g. --trace-incremental-marking), RELAY_SERVE_NODE_OPTIONS
 * (more NODE_OPTIONS for serve: e.g. --max-semi-space-size=2), RELAY_SERVE_LOG (a file that
 * gets serve's stdout, where V8's traces go: e.g. with RELAY_V8_FLAGS=--trace-deopt).
 * The changes that moved these numbers are in docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathCmd, roundOrder } from './paths.ts';
import type { PathId } from './paths.ts';
import { cpuMs, runTimed, statusKb } from './proc.ts';
import { buildBundle, setUp, writeRandomFile } from './setup.ts';
import { median } from './stats.ts';

const mib = Number(process.env.BENCH_MIB ?? 128);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const paths = (process.env.RELAY_PATHS ?? 'b,c,d,e').split(',').map((s) => s.trim()) as PathId[];
const down = process.env.RELAY_DIRECTION === 'down';
const warm = Number(process.env.RELAY_WARM_SESSIONS ?? 0);
const dir = mkdtempSync(join(tmpdir(), 'postern-relay-cost-'));
const log = (s: string): void => { process.stderr.write(`[relay-cost] ${s}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const preload = join(dir, 'trace-gc.mjs');
writeFileSync(preload, `import v8 from 'node:v8';\n${['--trace-gc', ...(process.env.RELAY_V8_FLAGS ?? '').split(' ').filter(Boolean)].map((f) => `v8.setFlagsFromString('${f}');\n`).join('')}`);

/** Counts the process's read/write/writev calls with perf (null when perf cannot). */
function countSyscalls(pid: number): { stop: () => Promise<number | null> } {
  let out = '';
  let child: ChildProcess | undefined;
  try {
    child = spawn('perf', ['stat', '-x,', '-e', 'syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d) => { out += d; });
    child.on('error', () => { child = undefined; });
  } catch { child = undefined; }
  return {
    stop: async () => {
      if (!child) return null;
      const closed = new Promise((r) => child!.once('close', r));
      child.kill('SIGINT');
      await closed;
      const counts = out.split('\n').filter((l) => l.includes('syscalls:')).map((l) => (l.startsWith('<not counted>') ? 0 : Number(l.split(',')[0])));
      return counts.length === 3 ? counts.reduce((a, b) => a + b, 0) : null;
    },
  };
}

buildBundle();
const env = await setUp({ cli: 'bundle', loginUsers: 0, log, serveEnv: { NODE_OPTIONS: `--import ${preload} ${process.env.RELAY_SERVE_NODE_OPTIONS ?? ''}` } });
let gcLines = '';
env.cluster.serve.proc.stdout!.on('data', (d: Buffer) => {
  gcLines += d.toString();
  if (process.env.RELAY_SERVE_LOG) appendFileSync(process.env.RELAY_SERVE_LOG, d);
});
const data = join(dir, 'data');
if (!down) writeRandomFile(data, mib);
// Sessions opened and closed on every path first, as `npm run bench`'s setup row does.
for (let i = 0; i < warm; i++) {
  for (const id of paths) {
    const t = await runTimed(pathCmd(env, id, 'true'), { timeoutMs: 60_000 });
    if (t.code !== 0) log(`warm-up ${id} failed: ${t.stderr.slice(-300)}`);
  }
}
if (warm) log(`${warm} sessions opened and closed on every path first; serve RSS ${(statusKb(env.servePid, 'VmRSS') / 1024).toFixed(0)} MiB`);
type Row = { cpu: number[]; syscalls: number[]; majorGcPerGiB: number[]; peakRssMiB: number[]; mbps: number[] };
const rows = new Map<PathId, Row>(paths.map((id) => [id, { cpu: [], syscalls: [], majorGcPerGiB: [], peakRssMiB: [], mbps: [] }]));
try {
  for (let r = 0; r < rounds; r++) {
    for (const id of roundOrder(r, paths)) {
      const row = rows.get(id)!;
      const relayCpu = (): number => id === 'b' ? cpuMs(env.jump.pid, true) : cpuMs(env.servePid);
      await sleep(300);
      const sys = id === 'b' ? undefined : countSyscalls(env.servePid);
      await sleep(200);
      gcLines = '';
      let peak = 0;
      const poll = setInterval(() => { peak = Math.max(peak, statusKb(env.servePid, 'VmRSS')); }, 50);
      const cpu0 = relayCpu();
      const remote = down ? `head -c ${mib * 1048576} /dev/zero` : 'cat > /dev/null';
      const input = down ? undefined : openSync(data, 'r');
      const t = await runTimed(pathCmd(env, id, remote), { ...(input === undefined ? {} : { stdinFd: input }), timeoutMs: 300_000 });
      if (input !== undefined) closeSync(input);
      await sleep(300);
      clearInterval(poll);
      const cpu = (relayCpu() - cpu0) / mib;
      const calls = await sys?.stop();
      if (t.code !== 0) { log(`${id} failed: ${t.stderr.slice(-300)}`); continue; }
      row.cpu.push(cpu);
      row.mbps.push(mib * 1.048576 / (t.ms / 1000));
      if (id !== 'b') {
        if (calls != null) row.syscalls.push(calls / mib);
        row.majorGcPerGiB.push(gcLines.split('\n').filter((l) => l.includes('Mark-Compact')).length * 1024 / mib);
        row.peakRssMiB.push(peak / 1024);
      }
      log(`round ${r + 1}/${rounds} ${id}: ${cpu.toFixed(2)} ms/MiB, ${(mib * 1.048576 / (t.ms / 1000)).toFixed(0)} MB/s${calls != null ? `, ${(calls / mib).toFixed(1)} syscalls/MiB` : ''}`);
    }
  }
} finally {
  await env.stop();
  rmSync(dir, { recursive: true, force: true });
}
const ref = median(rows.get('b')?.cpu ?? []);
const f = (xs: number[], d = 2): string => xs.length ? median(xs).toFixed(d) : '—';
process.stdout.write(`\n${down ? 'download (node to client)' : 'upload (client to node)'}, ${mib} MiB × ${rounds} rounds, medians\n\n| Path | relay CPU ms/MiB | vs (b) | syscalls/MiB | major GCs/GiB | peak RSS MiB | MB/s |\n| --- | --- | --- | --- | --- | --- | --- |\n`);
for (const [id, row] of rows) {
  process.stdout.write(`| ${id} | ${f(row.cpu)} | ${ref ? (median(row.cpu) / ref).toFixed(2) : '—'}× | ${f(row.syscalls, 1)} | ${f(row.majorGcPerGiB, 0)} | ${f(row.peakRssMiB, 0)} | ${f(row.mbps, 0)} |\n`);
}
