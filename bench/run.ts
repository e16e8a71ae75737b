/**
 * `npm run bench`: Postern's paths to a node against OpenSSH's own, on loopback, in one
 * run. Sets up a `postern serve`, a logged-in user, two sshd nodes and a plain
 * OpenSSH jump host; measures throughput, connection setup, CLI start, sessions held open
 * with their memory (500 on real sshd; 5,000 through the TLS tunnel to an echo stand-in),
 * login and web echo; prints a markdown table, writes bench/results/latest.json and the
 * generated part of docs/benchmarks.md.
 *
 * Settings (environment):
 *   BENCH_MIB=128         MiB per throughput sample        BENCH_ROUNDS=3     throughput rounds
 *   BENCH_SETUP_ROUNDS=20 connection setup rounds          BENCH_CLI_ROUNDS=20 CLI start rounds
 *   BENCH_SESSIONS=200    sessions held open at once       BENCH_BATCH=25     sessions opened together
 *   BENCH_LOGINS=5        logins timed (one user each)     BENCH_CLI=bundle   or source
 *   BENCH_TUNNEL_SESSIONS=5000 sessions of row 4b       BENCH_TUNNEL_BATCH=100 opened together
 *   BENCH_TUNNEL_DEADLINE_S=300 row 4b's own limit (it stops opening then; the rest count as failed)
 *   BENCH_ONLY=throughput,setup,cli,sessions,tunnel5k,login,web,ha   BENCH_DEADLINE_S=900 the whole run's limit
 *                         (tunnel5k: row 4b, BENCH_TUNNEL_SESSIONS held through the proxy's TLS
 *                         tunnel, the node side a TCP echo server standing in for sshd
 *                         (bench/tunnel-sessions.ts), run after sessions;
 *                         ha: the high-availability section, bench/ha.ts, run last in its own
 *                         process; BENCH_QUICK=1 runs it with 100,000 audit events and 3 s of logins)
 *   BENCH_ECHO_KEYS=200   keys per path per round of row 6   BENCH_ECHO_ROUNDS=3 its rounds
 *   BENCH_ECHO_GAP_MS=0   row 6 types a key this long after the last echo (100: a typist's pace)
 *   BENCH_DOC=1           write docs/benchmarks.md (0: only the JSON and the table)
 *   BENCH_QUICK=1         every row with smaller samples (64 MiB, 5 setup rounds, 50 sessions, 500 in 4b)
 *   BENCH_IDLE_WAIT_S=120 wait at most this long for the 1-minute load to drop below the core count
 *
 * `node bench/run.ts --report` rewrites the table in docs/benchmarks.md from latest.json.
 *
 * The load average is recorded at the start and after each measurement: on a shared
 * machine other work skews every number, and the JSON says how much was going on.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { existsSync, readdirSync, renameSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PATHS, pathCmd } from './paths.ts';
import type { PathId } from './paths.ts';
import { cliStart, connectionSetup, holdSessions, login, throughput } from './measure.ts';
import { buildBundle, ROOT, setUp } from './setup.ts';
import type { BenchEnv, CliMode } from './setup.ts';
import { table, targets, targetTable, writeDoc } from './report.ts';
import { holdTunnelSessions, tunnelServeArgs } from './tunnel-sessions.ts';
import { webEcho } from './web-echo.ts';
import type { Machine, Results } from './report.ts';

const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, not "${v}"`);
  return n;
};

// BENCH_QUICK=1: every row, with smaller samples (about 2 minutes instead of 7); each row
// is still the median of at least 3 runs.
const quick = process.env.BENCH_QUICK === '1';
const settings = {
  mib: num('BENCH_MIB', quick ? 64 : 512),
  rounds: Math.max(3, num('BENCH_ROUNDS', 3)),
  setupRounds: num('BENCH_SETUP_ROUNDS', quick ? 5 : 20),
  cliRounds: num('BENCH_CLI_ROUNDS', quick ? 5 : 20),
  sessions: num('BENCH_SESSIONS', quick ? 50 : 500),
  batch: Math.max(1, num('BENCH_BATCH', 25)),
  tunnelSessions: num('BENCH_TUNNEL_SESSIONS', quick ? 500 : 5000),
  tunnelBatch: Math.max(1, num('BENCH_TUNNEL_BATCH', 100)),
  tunnelDeadlineS: num('BENCH_TUNNEL_DEADLINE_S', 300),
  logins: num('BENCH_LOGINS', quick ? 3 : 5),
  echoKeys: num('BENCH_ECHO_KEYS', quick ? 50 : 200),
  echoRounds: num('BENCH_ECHO_ROUNDS', quick ? 1 : 3),
  deadlineS: num('BENCH_DEADLINE_S', 900),
  idleWaitS: num('BENCH_IDLE_WAIT_S', 120),
};
const cli: CliMode = process.env.BENCH_CLI === 'source' ? 'source' : 'bundle';
const only = new Set((process.env.BENCH_ONLY ?? 'throughput,setup,cli,sessions,tunnel5k,login,web,ha').split(',').map((s) => s.trim()));
const t0 = Date.now();
const log = (s: string): void => { process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`); };

/** What ssh2 does about its native crypto in this Node, from the sources and from the bundle. */
function nativeCrypto(): string {
  const require = createRequire(join(ROOT, 'package.json'));
  const source = (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean }).bindingAvailable;
  let why = '';
  try {
    require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
  } catch (err) {
    why = (err as Error).message.split('\n').slice(0, 3).join(' ');
    const gypi = join(ROOT, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto', 'build', 'config.gypi');
    const abi = existsSync(gypi) ? /"node_module_version": (\d+)/.exec(readFileSync(gypi, 'utf8'))?.[1] : undefined;
    if (abi) why += ` — built for NODE_MODULE_VERSION ${abi}, this Node is ${process.versions.modules}`;
  }
  let bundle = 'no bundle';
  const dist = join(ROOT, 'dist');
  const files = existsSync(dist) ? readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.mjs')) : [];
  for (const f of files) {
    const text = readFileSync(join(dist, f), 'utf8');
    const m = /require\d*\("((?:\.\/crypto|ssh2\/lib\/protocol\/crypto)\/build\/Release\/sshcrypto\.node)"\)/.exec(text);
    if (!m) continue;
    let where: string | undefined;
    try { where = createRequire(join(dist, f)).resolve(m[1]); } catch { where = undefined; }
    bundle = where
      ? `the bundle (dist/${f}) loads it from ${where}`
      : `the bundle (dist/${f}) requires ${m[1]}, which does not resolve from there: never loaded from the bundle`;
  }
  return `${source ? 'loaded' : `NOT loaded (${why || 'unavailable'})`}; ${bundle}`;
}

function machine(): Machine {
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    openssh: (ssh.stderr || ssh.stdout).trim(),
    ssh2NativeCrypto: nativeCrypto(),
    cli: cli === 'bundle' ? 'the esbuild bundle dist/postern.mjs, built at the start of the run (as shipped)' : 'TypeScript sources (POSTERN_FROM_SOURCE=1)',
  };
}

/** The ciphers each hop negotiates: from `ssh -v` for OpenSSH clients, from ssh2's defaults for ssh2 ↔ ssh2. */
function ciphers(env: BenchEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const id of ['a', 'b', 'd'] as PathId[]) {
    const c = pathCmd(env, id, 'true');
    const r = spawnSync(c.cmd, ['-v', ...c.args], { env: c.env, encoding: 'utf8', timeout: 20_000 });
    const found = [...r.stderr.matchAll(/kex: server->client cipher: (\S+)/g)].map((m) => m[1]);
    out[`(${id}) OpenSSH hops`] = found.join(' + ') || 'unknown';
  }
  const require = createRequire(join(ROOT, 'package.json'));
  const constants = require('ssh2/lib/protocol/constants.js') as { DEFAULT_CIPHER: string[] };
  out['(e) ssh2 → Postern listener'] = constants.DEFAULT_CIPHER[0];
  out['(c) TLS tunnel on the web port'] = tlsCipher(env);
  return out;
}

/** The TLS cipher the web port negotiates (the tunnel of path c). */
function tlsCipher(env: BenchEnv): string {
  const r = spawnSync('openssl', ['s_client', '-connect', env.cluster.serve.web, '-alpn', 'postern-tunnel/1', '-brief'], { input: '', encoding: 'utf8', timeout: 10_000 });
  const cipher = /Ciphersuite: (\S+)/.exec(r.stderr + r.stdout)?.[1];
  const proto = /Protocol version: (\S+)/.exec(r.stderr + r.stdout)?.[1];
  return cipher ? `${proto ?? 'TLS'} ${cipher}` : 'unknown';
}

/** Waits (bounded) for the machine to be quiet: the 1-minute load below the number of cores. */
async function awaitQuiet(): Promise<void> {
  const cores = cpus().length;
  for (let waited = 0; waited < settings.idleWaitS && loadavg()[0] >= cores; waited += 5) {
    if (waited % 30 === 0) log(`load ${loadavg()[0].toFixed(1)} on ${cores} cores: waiting for quiet (at most ${settings.idleWaitS - waited} s more)`);
    await new Promise((r) => setTimeout(r, 5000));
  }
}

async function main(): Promise<number> {
  log(`settings: ${JSON.stringify(settings)} cli=${cli} only=${[...only].join(',')}`);
  if (cli === 'bundle') {
    log('building the bundle (npm run build)');
    buildBundle();
  }
  const results: Results = { date: new Date().toISOString(), machine: machine(), settings: { ...settings, cli }, ciphers: {}, load: {}, seconds: 0 };
  const noteLoad = (phase: string): void => { results.load[phase] = loadavg().map((l) => Number(l.toFixed(2))); };
  log(`machine: ${JSON.stringify(results.machine)}`);
  // Row 4b's sessions all come from 127.0.0.1: the web port's per-source cap goes above their count.
  const tunnel = only.has('tunnel5k') && settings.tunnelSessions > 0;
  const env = await setUp({ cli, loginUsers: only.has('login') ? settings.logins : 0, webUser: only.has('web'), log, ...(tunnel ? { serveArgs: tunnelServeArgs(settings.tunnelSessions) } : {}) });
  const runEnds = Date.now() + settings.deadlineS * 1000;
  const watchdog = setTimeout(() => {
    log(`the run passed BENCH_DEADLINE_S=${settings.deadlineS}: stopping`);
    void env.stop().finally(() => process.exit(3));
  }, settings.deadlineS * 1000);
  try {
    await awaitQuiet();
    noteLoad('start');
    results.ciphers = ciphers(env);
    log(`ciphers: ${JSON.stringify(results.ciphers)}`);
    // Every path must work before anything is timed.
    for (const id of PATHS) {
      const c = pathCmd(env, id, 'echo bench-ok');
      const r = spawnSync(c.cmd, c.args, { env: c.env, encoding: 'utf8', timeout: 30_000 });
      if (r.stdout.trim() !== 'bench-ok') throw new Error(`path ${id} does not work: exit ${r.status}\n${r.stderr}\n${env.cluster.serve.stderr().slice(-2000)}`);
    }
    if (only.has('cli')) {
      log('3. CLI start');
      results.cli = await cliStart(env, settings.cliRounds, log);
      noteLoad('cli');
    }
    if (only.has('setup')) {
      log('2. connection setup');
      results.setup = await connectionSetup(env, settings.setupRounds, log);
      noteLoad('setup');
    }
    if (only.has('throughput')) {
      log(`1. throughput, ${settings.mib} MiB`);
      results.throughput = await throughput(env, settings.mib, settings.rounds, log);
      noteLoad('throughput');
    }
    if (only.has('login')) {
      log('5. login');
      results.login = await login(env, log);
      noteLoad('login');
    }
    if (only.has('web') && settings.echoKeys > 0) {
      log('6. web terminal echo');
      results.echo = await webEcho(env, settings.echoKeys, settings.echoRounds, log);
      noteLoad('web');
    }
    if (only.has('sessions') && settings.sessions > 0) {
      log(`4. ${settings.sessions} sessions held open, Postern's listener then the jump host`);
      results.sessions = [];
      for (const id of ['d', 'b'] as const) results.sessions.push(await holdSessions(env, id, settings.sessions, settings.batch, log));
      noteLoad('sessions');
    }
    if (tunnel) {
      log(`4b. ${settings.tunnelSessions} sessions held through the TLS tunnel, the node side a TCP echo stand-in (not sshd)`);
      // Its own limit, and never past the run's: a minute is left for the clean-up.
      const limitMs = Math.max(10_000, Math.min(settings.tunnelDeadlineS * 1000, runEnds - Date.now() - 60_000));
      results.tunnel = await holdTunnelSessions(env, settings.tunnelSessions, settings.tunnelBatch, log, limitMs);
      noteLoad('tunnel5k');
    }
  } finally {
    clearTimeout(watchdog);
    await env.stop();
  }
  results.seconds = (Date.now() - t0) / 1000;
  const file = join(ROOT, 'bench', 'results', 'latest.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  if (process.env.BENCH_DOC !== '0') writeDoc(join(ROOT, 'docs', 'benchmarks.md'), results);
  process.stdout.write(`\n${table(results)}\n\n${targetTable(targets(results))}\n\nwrote bench/results/latest.json${process.env.BENCH_DOC !== '0' ? ' and docs/benchmarks.md' : ''} (${Math.round(results.seconds)} s)\n`);
  if (only.has('ha')) return highAvailability();
  return 0;
}

/** The high-availability section (bench/ha.ts): its own PostgreSQL and stores, its own bounded run. */
function highAvailability(): number {
  log('7. high availability: logins with 1 and 2 auth servers on PostgreSQL against SQLite, ls over 10,000 nodes, audit over 1,000,000 events');
  const small = quick ? { BENCH_HA_EVENTS: process.env.BENCH_HA_EVENTS ?? '100000', BENCH_HA_LOGIN_S: process.env.BENCH_HA_LOGIN_S ?? '3' } : {};
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'ha.ts')], { stdio: 'inherit', env: { ...process.env, ...small }, timeout: 25 * 60_000 });
  return r.status ?? 1;
}

/** `node bench/run.ts --report`: the table and docs/benchmarks.md again from bench/results/latest.json, measuring nothing. */
function report(): number {
  const results = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', 'latest.json'), 'utf8')) as Results;
  writeDoc(join(ROOT, 'docs', 'benchmarks.md'), results);
  process.stdout.write(`${table(results)}\n\n${targetTable(targets(results))}\n\nwrote docs/benchmarks.md from bench/results/latest.json (${results.date})\n`);
  return 0;
}

process.exitCode = process.argv.includes('--report') ? report() : await main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  return 1;
});
