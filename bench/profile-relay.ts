/**
 * `node bench/profile-relay.ts`: where the serve process spends its CPU while it relays,
 * one path at a time (c: the TLS tunnel of `postern proxy ssh`, d: `ssh -J` through the SSH
 * listener, e: `postern ssh`), and the jump host sshd's for reference (b). Uses Linux
 * `perf record` on the process (serve runs with `--perf-basic-prof`, so JavaScript frames
 * have names), and prints for each path the CPU per MiB and the top symbols by self time,
 * kernel and native code included, which `--cpu-prof` does not show (system calls, GC
 * threads, OpenSSL).
 *
 * Settings: BENCH_MIB (256), PROFILE_PATHS (b,c,d,e), PROFILE_TOP (25). Needs root or
 * perf_event_paranoid ≤ 1, and `perf` on the PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathCmd } from './paths.ts';
import type { PathId } from './paths.ts';
import { cpuMs, runTimed } from './proc.ts';
import { buildBundle, setUp, writeRandomFile } from './setup.ts';

const mib = Number(process.env.BENCH_MIB ?? 256);
const paths = (process.env.PROFILE_PATHS ?? 'b,c,d,e').split(',').map((s) => s.trim()) as PathId[];
const topN = Number(process.env.PROFILE_TOP ?? 25);
const out = mkdtempSync(join(tmpdir(), 'postern-perf-'));
const log = (s: string): void => { process.stderr.write(`[profile-relay] ${s}\n`); };

buildBundle();
const env = await setUp({ cli: 'bundle', loginUsers: 0, log, serveEnv: { NODE_OPTIONS: '--perf-basic-prof-only-functions' } });
const data = writeRandomFile(join(out, 'data'), mib);
try {
  for (const id of paths) {
    const file = join(out, `${id}.perf`);
    // For b, the jump host's per-connection sshd appear only once the client connects:
    // record the whole system and keep the sshd samples.
    const target = id === 'b' ? ['-a'] : ['-p', String(env.servePid)];
    const rec = spawn('perf', ['record', '-F', '1999', '-g', '-o', file, ...target], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise((r) => setTimeout(r, 500));
    const cpu0 = id === 'b' ? cpuMs(env.jump.pid, true) : cpuMs(env.servePid);
    const input = openSync(data, 'r');
    const t = await runTimed(pathCmd(env, id, 'cat > /dev/null'), { stdinFd: input, timeoutMs: 300_000 });
    closeSync(input);
    await new Promise((r) => setTimeout(r, 300));
    const cpu = ((id === 'b' ? cpuMs(env.jump.pid, true) : cpuMs(env.servePid)) - cpu0) / mib;
    rec.kill('SIGINT');
    await new Promise((r) => rec.once('close', r));
    log(`${id}: ${mib} MiB in ${t.ms.toFixed(0)} ms, exit ${t.code}, relay CPU ${cpu.toFixed(2)} ms/MiB`);
    const comm = id === 'b' ? ['--comms', 'sshd'] : [];
    const rep = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', 'dso,sym', '--stdio', '-g', 'none', '--percent-limit', '0.7', ...comm], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const lines = rep.stdout.split('\n').filter((l) => /^\s+\d/.test(l)).slice(0, topN);
    process.stdout.write(`\n## ${id}: relay CPU ${cpu.toFixed(2)} ms/MiB (${mib} MiB, ${t.ms.toFixed(0)} ms)\n${lines.join('\n')}\n`);
  }
} finally {
  await env.stop();
  rmSync(data, { force: true });
}
log(`perf data in ${out}`);
