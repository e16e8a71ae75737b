/**
 * Measurements 1 to 5 of the benchmark (the sixth, web terminal key to echo, is in web-echo.ts).
 * Each alternates the paths round by round and keeps every raw sample; none loops
 * without a bound, and every process it starts has a deadline.
 */
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_PASSWORD } from '../test/helpers/cluster.ts';
import { POSTERN_BIN } from '../test/helpers/cli.ts';
import { oathtoolCode } from '../test/helpers/openssh.ts';
import { PATHS, pathCmd, roundOrder } from './paths.ts';
import type { PathId } from './paths.ts';
import { cpuMs, descendants, holdSession, rollupKb, runTimed, statusKb, sumRollup, timeToFirstBytes } from './proc.ts';
import { establishedOn } from '../test/helpers/net.ts';
import type { Cmd, HeldSession } from './proc.ts';
import { cliEnv, writeRandomFile } from './setup.ts';
import { slope } from './stats.ts';
import type { BenchEnv } from './setup.ts';

/** Samples of one path: values, plus what failed (exit code and stderr). */
export interface PathSamples {
  values: number[];
  failures: string[];
}

type ByPath = Partial<Record<PathId, PathSamples>>;

const empty = (ids: PathId[]): ByPath => Object.fromEntries(ids.map((id) => [id, { values: [], failures: [] }]));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const failure = (round: number, code: number | null, stderr: string): string => `round ${round}: exit ${code}: ${stderr.trim().slice(-400)}`;

/** 1. Throughput: `mib` MiB through `cat > /dev/null`, MB/s (10^6 bytes) over the command's wall time. */
export async function throughput(env: BenchEnv, mib: number, rounds: number, log: (s: string) => void): Promise<{ mib: number; mbps: ByPath; ms: ByPath; serverCpuMsPerMib: ByPath }> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-data-'));
  const file = writeRandomFile(join(dir, 'data'), mib);
  const mbps = empty(PATHS);
  const ms = empty(PATHS);
  const cpu = empty(['b', 'c', 'd', 'e']);
  const bytes = mib * 1024 * 1024;
  // The relay's CPU: the serve process for c, d and e; the jump host sshd's per-connection
  // processes for b (counted in its cutime once it has reaped them).
  const serverCpu = (id: PathId): number => id === 'b' ? cpuMs(env.jump.pid, true) : cpuMs(env.servePid);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const id of roundOrder(r, PATHS)) {
        const input = openSync(file, 'r');
        const cpu0 = id === 'a' ? 0 : serverCpu(id);
        const t = await runTimed(pathCmd(env, id, 'cat > /dev/null'), { stdinFd: input, timeoutMs: 180_000 });
        closeSync(input);
        if (t.code === 0) {
          ms[id]!.values.push(t.ms);
          mbps[id]!.values.push(bytes / 1e6 / (t.ms / 1000));
          if (id !== 'a') {
            await sleep(300);
            cpu[id]!.values.push((serverCpu(id) - cpu0) / mib);
          }
        } else {
          mbps[id]!.failures.push(failure(r, t.code, t.stderr));
        }
        log(`  throughput round ${r + 1}/${rounds} ${id}: ${t.code === 0 ? `${(bytes / 1e6 / (t.ms / 1000)).toFixed(1)} MB/s` : `failed (${t.code}) ${t.stderr.trim().slice(-200)}`}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { mib, mbps, ms, serverCpuMsPerMib: cpu };
}

/** 2. Connection setup: the wall time of `… true`, ms. */
export async function connectionSetup(env: BenchEnv, rounds: number, log: (s: string) => void): Promise<ByPath> {
  const out = empty(PATHS);
  for (let r = 0; r < rounds; r++) {
    for (const id of roundOrder(r, PATHS)) {
      const t = await runTimed(pathCmd(env, id, 'true'), { timeoutMs: 30_000 });
      if (t.code === 0) out[id]!.values.push(t.ms);
      else out[id]!.failures.push(failure(r, t.code, t.stderr));
    }
    if ((r + 1) % 5 === 0) log(`  setup round ${r + 1}/${rounds}`);
  }
  return out;
}

/** What CLI start measured. */
export interface CliStart {
  /** `node -e 0`: the floor any Node CLI starts from. */
  nodeFloor: number[];
  /** `postern --version` as the bundle and from the sources. */
  versionBundle: number[];
  versionSource: number[];
  /** From starting the ProxyCommand to the node's `SSH-2.0-` on its stdout: b = `ssh -W` via the jump host, c = `postern proxy ssh`, d = `ssh -W` via Postern's listener. */
  firstByte: ByPath;
}

/** 3. CLI start. */
export async function cliStart(env: BenchEnv, rounds: number, log: (s: string) => void): Promise<CliStart> {
  const res: CliStart = { nodeFloor: [], versionBundle: [], versionSource: [], firstByte: empty(['b', 'c', 'd']) };
  const starts: Array<[number[], Cmd]> = [
    [res.nodeFloor, { cmd: process.execPath, args: ['-e', '0'], env: cliEnv('bundle') }],
    [res.versionBundle, { cmd: process.execPath, args: [POSTERN_BIN, '--version'], env: cliEnv('bundle') }],
    [res.versionSource, { cmd: process.execPath, args: [POSTERN_BIN, '--version'], env: cliEnv('source') }],
  ];
  const node = env.nodes[0];
  const first: Record<'b' | 'c' | 'd', Cmd> = {
    b: { cmd: 'ssh', args: ['-F', env.sshConfig, '-W', `127.0.0.1:${node.port}`, 'bench-jump'], env: env.sshEnv },
    c: { cmd: process.execPath, args: [POSTERN_BIN, 'proxy', 'ssh', `${env.login}@${node.name}.test.example:22`], env: env.posternEnv },
    d: { cmd: 'ssh', args: ['-F', env.sshConfig, '-p', String(env.cluster.sshPort), '-W', `${node.name}:22`, `${env.login}@127.0.0.1`], env: env.sshEnv },
  };
  for (let r = 0; r < rounds; r++) {
    for (const k of roundOrder(r, [0, 1, 2])) {
      const [into, c] = starts[k];
      const t = await runTimed(c, { timeoutMs: 20_000 });
      if (t.code === 0) into.push(t.ms);
    }
    for (const id of roundOrder(r, ['b', 'c', 'd'] as const)) {
      const t = await timeToFirstBytes(first[id], 'SSH-2.0-', 20_000);
      if (t.ok) res.firstByte[id]!.values.push(t.ms);
      else res.firstByte[id]!.failures.push(`round ${r}: ${t.stderr.trim().slice(-400)}`);
    }
    if ((r + 1) % 5 === 0) log(`  cli round ${r + 1}/${rounds}`);
  }
  return res;
}

/** Memory of the two servers at one moment, KiB. */
export interface MemorySnapshot {
  proxyRssKb: number;
  proxyPssKb: number;
  /** Sum over the jump host sshd's per-connection processes. */
  jumpChildren: number;
  jumpChildrenRssKb: number;
  jumpChildrenPssKb: number;
  jumpListenerRssKb: number;
  /** Established server-side sockets on the proxy's SSH port and on the jump host's port. */
  proxyEstablished: number;
  jumpEstablished: number;
}

/** The result of holding sessions open through one path. */
export interface HeldResult {
  path: PathId;
  target: number;
  opened: number;
  /** Sessions that echoed a line back after all were open. */
  alive: number;
  openSeconds: number;
  before: MemorySnapshot;
  with: MemorySnapshot;
  after: MemorySnapshot;
  /** Memory after each batch: sessions up so far, and the snapshot then. */
  steps: Array<{ open: number } & MemorySnapshot>;
  /**
   * Per session, KiB: the least-squares slope of memory over sessions open, batch by batch
   * (proxy: the serve process's RSS; jump host: its per-connection processes' RSS and PSS).
   * A slope over many points is steadier than one difference, which a garbage collection
   * in between can swing either way.
   */
  perSessionRssKb: number;
  perSessionPssKb: number;
  /** The same as (with − before) / sessions. */
  deltaRssKb: number;
  deltaPssKb: number;
  failures: string[];
}

function snapshot(env: BenchEnv): MemorySnapshot {
  const proxy = rollupKb(env.servePid);
  const kids = sumRollup(descendants(env.jump.pid));
  return {
    proxyRssKb: statusKb(env.servePid, 'VmRSS'), proxyPssKb: proxy.pss,
    jumpChildren: kids.count, jumpChildrenRssKb: kids.rss, jumpChildrenPssKb: kids.pss,
    jumpListenerRssKb: statusKb(env.jump.pid, 'VmRSS'),
    proxyEstablished: establishedOn(env.cluster.sshPort), jumpEstablished: establishedOn(env.jump.port),
  };
}

/** 4. Holds `n` sessions open at once through path b or d (`echo up; exec cat` on the nodes, spread over both). */
export async function holdSessions(env: BenchEnv, id: 'b' | 'd', n: number, batch: number, log: (s: string) => void): Promise<HeldResult> {
  await sleep(2000);
  const before = snapshot(env);
  const sessions: HeldSession[] = [];
  const failures: string[] = [];
  const steps: HeldResult['steps'] = [{ open: 0, ...before }];
  const t0 = Date.now();
  let opened = 0;
  try {
    for (let i = 0; i < n; i += batch) {
      const group: HeldSession[] = [];
      for (let j = i; j < Math.min(n, i + batch); j++) group.push(holdSession(pathCmd(env, id, 'echo bench-up; exec cat', j % 2), 'bench-up', 60_000));
      sessions.push(...group);
      const ups = await Promise.all(group.map((s) => s.up));
      opened += ups.filter(Boolean).length;
      if (ups.some((u) => !u)) failures.push(`batch at ${i}: ${ups.filter((u) => !u).length} did not come up`);
      steps.push({ open: opened, ...snapshot(env) });
      if ((i / batch) % 5 === 4) log(`  ${id}: ${opened}/${n} open`);
    }
    const openSeconds = (Date.now() - t0) / 1000;
    await sleep(3000);
    const withN = snapshot(env);
    let alive = 0;
    for (let i = 0; i < sessions.length; i += 50) {
      const oks = await Promise.all(sessions.slice(i, i + 50).map((s, k) => s.ping(`bench-ping-${i + k}`, 20_000)));
      alive += oks.filter(Boolean).length;
    }
    log(`  ${id}: ${opened} opened in ${openSeconds.toFixed(1)} s, ${alive} alive; established: proxy ${withN.proxyEstablished}, jump host ${withN.jumpEstablished}`);
    steps.push({ open: opened, ...withN });
    const xs = steps.map((st) => st.open);
    const server = id === 'd'
      ? { rss: withN.proxyRssKb - before.proxyRssKb, pss: withN.proxyPssKb - before.proxyPssKb, rssSlope: slope(xs, steps.map((st) => st.proxyRssKb)), pssSlope: slope(xs, steps.map((st) => st.proxyPssKb)) }
      : { rss: withN.jumpChildrenRssKb - before.jumpChildrenRssKb, pss: withN.jumpChildrenPssKb - before.jumpChildrenPssKb, rssSlope: slope(xs, steps.map((st) => st.jumpChildrenRssKb)), pssSlope: slope(xs, steps.map((st) => st.jumpChildrenPssKb)) };
    await Promise.all(sessions.map((s) => s.close(20_000)));
    await sleep(2000);
    return {
      path: id, target: n, opened, alive, openSeconds, before, with: withN, after: snapshot(env),
      steps, perSessionRssKb: server.rssSlope, perSessionPssKb: server.pssSlope, deltaRssKb: server.rss / n, deltaPssKb: server.pss / n, failures,
    };
  } finally {
    await Promise.all(sessions.filter((s) => !s.exited()).map((s) => s.close(5_000)));
  }
}

/** 5. Login: the wall time of `postern login` (password on stdin, a fresh TOTP code), one user each. */
export async function login(env: BenchEnv, log: (s: string) => void): Promise<PathSamples> {
  const res: PathSamples = { values: [], failures: [] };
  for (const u of env.loginUsers) {
    const home = mkdtempSync(join(tmpdir(), 'postern-bench-login-'));
    const code = oathtoolCode(u.secret);
    const t = await runTimed({
      cmd: process.execPath,
      args: [POSTERN_BIN, 'login', '--proxy', env.cluster.serve.web, '--user', u.name, '--password-stdin', '--otp', code, '--ca-pin', env.cluster.serve.caPin, '--add-keys-to-agent', 'no'],
      env: cliEnv(env.cli, { TSH_HOME: home }),
    }, { input: `${TEST_PASSWORD}\n`, timeoutMs: 30_000 });
    if (t.code === 0) res.values.push(t.ms);
    else res.failures.push(failure(res.values.length, t.code, t.stderr));
    rmSync(home, { recursive: true, force: true });
  }
  log(`  login: ${res.values.length} ok, ${res.failures.length} failed`);
  return res;
}
