/**
 * The benchmark's outputs: the markdown table (rows: measurement × path, ratio against
 * path b), the targets with met or missed, and the generated part of
 * docs/benchmarks.md (between its bench markers; the prose around them is kept).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { PATHS, PATH_LABELS } from './paths.ts';
import type { PathId } from './paths.ts';
import type { CliStart, HeldResult, PathSamples } from './measure.ts';
import type { EchoResult, EchoSamples } from './web-echo.ts';
import type { TunnelResult } from './tunnel-sessions.ts';
import { fmt, median, p90, quantile } from './stats.ts';

/** The machine the numbers came from. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  openssh: string;
  ssh2NativeCrypto: string;
  cli: string;
}

/** Everything a run measured, as written to bench/results/latest.json. */
export interface Results {
  date: string;
  machine: Machine;
  settings: Record<string, number | string>;
  ciphers: Record<string, string>;
  /** The 1, 5 and 15 minute load averages at the start and after each measurement. */
  load: Record<string, number[]>;
  throughput?: { mib: number; mbps: Partial<Record<PathId, PathSamples>>; ms: Partial<Record<PathId, PathSamples>>; serverCpuMsPerMib: Partial<Record<PathId, PathSamples>> };
  setup?: Partial<Record<PathId, PathSamples>>;
  cli?: CliStart;
  sessions?: HeldResult[];
  /** Row 4b: many sessions through the TLS tunnel to an echo stand-in (not sshd). */
  tunnel?: TunnelResult;
  login?: PathSamples;
  echo?: EchoResult;
  seconds: number;
}

/** A target of the benchmark and whether this run met it. */
export interface Target {
  text: string;
  measured: string;
  met: boolean | undefined;
}

const vals = (s: PathSamples | undefined): number[] => s?.values ?? [];

function ratio(x: number, b: number): string {
  return Number.isFinite(x) && Number.isFinite(b) && b > 0 ? `${(x / b).toFixed(2)}×` : '—';
}

function failed(s: PathSamples | undefined): string {
  return s && s.failures.length ? ` (${s.failures.length} failed)` : '';
}

/**
 * Throughput net of connection setup: bytes over (wall time − the path's median `… true`
 * time from the same run), so that setting up and tearing down, measured on its own in
 * row 2, is not counted twice; the wall-time rate when setup was not measured.
 */
export function netThroughput(r: Results): Partial<Record<PathId, number[]>> {
  const out: Partial<Record<PathId, number[]>> = {};
  if (!r.throughput) return out;
  const bytes = r.throughput.mib * 1024 * 1024;
  for (const id of PATHS) {
    const setup = r.setup ? median(vals(r.setup[id])) : 0;
    out[id] = vals(r.throughput.ms[id]).map((ms) => bytes / 1e6 / (Math.max(1, ms - (Number.isFinite(setup) ? setup : 0)) / 1000));
  }
  return out;
}

/** A path's echo p99: the median of its rounds' p99s (older results: the p99 of all samples). */
function echoP99(s: EchoSamples): number {
  return s.roundP99?.length ? median(s.roundP99) : quantile(s.values, 0.99);
}

/** The markdown table. */
export function table(r: Results): string {
  const rows: string[][] = [];
  if (r.throughput) {
    const net = netThroughput(r);
    const b = median(net.b ?? []);
    for (const id of PATHS) {
      const s = r.throughput.mbps[id];
      rows.push([`1. Throughput, ${r.throughput.mib} MiB, net of setup (MB/s, higher is better)`, PATH_LABELS[id], fmt(median(net[id] ?? [])), `wall ${fmt(median(vals(s)))}`, id === 'b' ? '1.00×' : ratio(median(net[id] ?? []), b), `${vals(s).length}${failed(s)}`]);
    }
    const cpu = r.throughput.serverCpuMsPerMib;
    const cb = median(vals(cpu.b));
    for (const id of ['b', 'c', 'd', 'e'] as const) {
      const who = id === 'b' ? 'jump host sshd' : 'Postern proxy (serve)';
      rows.push(['1. Relay CPU while piping (ms per MiB, lower is better)', `${PATH_LABELS[id]}: ${who}`, fmt(median(vals(cpu[id]))), `max ${fmt(Math.max(...vals(cpu[id])))}`, id === 'b' ? '1.00×' : ratio(median(vals(cpu[id])), cb), String(vals(cpu[id]).length)]);
    }
  }
  if (r.setup) {
    const b = median(vals(r.setup.b));
    for (const id of PATHS) {
      const s = r.setup[id];
      rows.push(['2. Connection setup, `… true` (ms)', PATH_LABELS[id], fmt(median(vals(s))), fmt(p90(vals(s))), id === 'b' ? '1.00×' : ratio(median(vals(s)), b), `${vals(s).length}${failed(s)}`]);
    }
  }
  if (r.cli) {
    const c = r.cli;
    rows.push(['3. CLI start (ms)', '`node -e 0` (the floor of any Node CLI)', fmt(median(c.nodeFloor)), fmt(p90(c.nodeFloor)), '—', String(c.nodeFloor.length)]);
    rows.push(['3. CLI start (ms)', '`postern --version`, bundle (as shipped)', fmt(median(c.versionBundle)), fmt(p90(c.versionBundle)), '—', String(c.versionBundle.length)]);
    rows.push(['3. CLI start (ms)', '`postern --version`, from the sources', fmt(median(c.versionSource)), fmt(p90(c.versionSource)), '—', String(c.versionSource.length)]);
    const labels: Record<string, string> = { b: '(b) `ssh -W` via the OpenSSH jump host', c: '(c) `postern proxy ssh`', d: '(d) `ssh -W` via Postern\'s listener' };
    const b = median(vals(c.firstByte.b));
    for (const id of ['b', 'c', 'd'] as const) {
      const s = c.firstByte[id];
      rows.push(['3. Start to the node\'s first byte (ms)', labels[id], fmt(median(vals(s))), fmt(p90(vals(s))), id === 'b' ? '1.00×' : ratio(median(vals(s)), b), `${vals(s).length}${failed(s)}`]);
    }
  }
  if (r.sessions) {
    const b = r.sessions.find((s) => s.path === 'b');
    for (const s of r.sessions) {
      // The proxy is one process: its RSS growth is its cost. The jump host's cost is spread
      // over two processes per connection that share pages: PSS counts each page once.
      const mine = s.path === 'b' ? s.perSessionPssKb : s.perSessionRssKb;
      const other = s.path === 'b' ? `RSS ${fmt(s.perSessionRssKb)} KiB` : `PSS ${fmt(s.perSessionPssKb)} KiB`;
      const who = s.path === 'b' ? 'jump host sshd, per connection (PSS)' : 'Postern proxy, per session (RSS)';
      rows.push([`4. Memory with ${s.target} sessions held open (KiB per session; ${s.alive}/${s.target} alive)`, `${PATH_LABELS[s.path]}: ${who}`, fmt(mine), other, s.path === 'b' ? '1.00×' : b ? ratio(mine, b.perSessionPssKb) : '—', `${s.opened} opened in ${s.openSeconds.toFixed(0)} s`]);
    }
  }
  if (r.tunnel) rows.push(...tunnelRows(r.tunnel, r.sessions?.find((s) => s.path === 'b')));
  if (r.login) {
    rows.push(['5. `postern login` (ms)', 'password + TOTP, new key, certificate', fmt(median(r.login.values)), fmt(p90(r.login.values)), '—', `${r.login.values.length}${failed(r.login)}`]);
  }
  if (r.echo) {
    const ssh = r.echo.ssh;
    const rowsOf: Array<[string, EchoSamples]> = [['web terminal in Chromium (wss → proxy → SSH → node)', r.echo.web]];
    // Older results have no Node-client row.
    if (r.echo.wsNode) rowsOf.push(['the same websocket from Node\'s `ws` (no browser)', r.echo.wsNode]);
    rowsOf.push(['`ssh -tt` straight to the node (the PTY floor)', ssh]);
    if (r.echo.browserFloor) rowsOf.push(['Chromium over wss to an echo server in the bench (the browser\'s floor, no proxy, no PTY)', r.echo.browserFloor]);
    for (const [label, s] of rowsOf) {
      const rounds = s.roundP99 ? `, ${s.roundP99.length} rounds` : '';
      rows.push([`6. Key to echo (ms; p99${s.roundP99 ? ', the median of the rounds\' p99s,' : ''} in the next column)`, label, fmt(median(s.values)), `p99 ${fmt(echoP99(s))}`, s === ssh ? '—' : `p99 ${ratio(echoP99(s), echoP99(ssh))}, p50 ${ratio(median(s.values), median(ssh.values))} of ssh`, `${s.values.length}${rounds}${failed(s)}`]);
    }
  }

  return rowsTable(rows);
}

/** Rows of the table (measurement, path, median, other, vs (b), samples) as markdown, with the head. */
export function rowsTable(rows: string[][]): string {
  const head = ['Measurement', 'Path', 'Median', 'p90 / other', 'vs (b)', 'Samples'];
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/**
 * Row 4b: the proxy's memory and CPU per session with many sessions through the TLS tunnel;
 * the memory against the jump host sshd's PSS per connection when row 4 ran too.
 */
export function tunnelRows(t: TunnelResult, jump?: HeldResult): string[][] {
  const what = `${t.target} sessions held through the TLS tunnel; node side: echo stand-in, not sshd`;
  const path = 'TLS tunnel (transport of (c) and (e)): Postern proxy (serve)';
  const samples = `${t.opened} opened (${t.failed} failed${t.cutShort ? ', cut short by the deadline' : ''}) in ${t.openSeconds.toFixed(0)} s`;
  return [
    [`4b. Memory, ${what} (KiB per session; ${t.alive}/${t.target} echoed back)`, `${path}, RSS slope`, fmt(t.perSessionRssKb), `growth ÷ n ${fmt(t.deltaRssKb)} KiB`, jump ? ratio(t.perSessionRssKb, jump.perSessionPssKb) : '—', samples],
    [`4b. CPU, ${what} (ms per session)`, `${path}, opening`, fmt(t.cpuOpenMsPerSession), `echo round ${fmt(t.cpuEchoMsPerSession)} ms`, '—', samples],
  ];
}

/** Row 4b's target: every session held, none dropped. */
export function tunnelTarget(t: TunnelResult): Target {
  return {
    text: `${t.target} sessions held through one proxy (TLS tunnel; node side an echo stand-in, not sshd), none dropped`,
    measured: `${t.alive}/${t.target} echoed back, ${t.failed} failed to open; proxy ${fmt(t.perSessionRssKb)} KiB RSS and ${fmt(t.cpuOpenMsPerSession)} ms CPU per session`,
    met: t.alive === t.target && t.failed === 0,
  };
}

/** The benchmark's targets, judged on this run. */
export function targets(r: Results): Target[] {
  const out: Target[] = [];
  if (r.throughput) {
    const net = netThroughput(r);
    const b = median(net.b ?? []);
    for (const id of ['c', 'd', 'e'] as const) {
      const x = median(net[id] ?? []);
      out.push({ text: `Throughput of ${PATH_LABELS[id]} ≥ (b)`, measured: `${fmt(x)} vs ${fmt(b)} MB/s net (${ratio(x, b)})`, met: Number.isFinite(x) ? x >= b : false });
    }
    const cpu = r.throughput.serverCpuMsPerMib;
    const cb = median(vals(cpu.b));
    for (const id of ['c', 'd', 'e'] as const) {
      const x = median(vals(cpu[id]));
      out.push({ text: `Relay CPU per MiB of ${PATH_LABELS[id]} ≤ the jump host sshd's`, measured: `${fmt(x)} vs ${fmt(cb)} ms/MiB (${ratio(x, cb)})`, met: Number.isFinite(x) && Number.isFinite(cb) ? x <= cb : false });
    }
  }
  if (r.setup) {
    const b = median(vals(r.setup.b));
    for (const id of ['c', 'd', 'e'] as const) {
      const x = median(vals(r.setup[id]));
      out.push({ text: `Connection setup of ${PATH_LABELS[id]} ≤ 1.2× (b)`, measured: `${fmt(x)} vs ${fmt(b)} ms (${ratio(x, b)})`, met: Number.isFinite(x) ? x <= 1.2 * b : false });
    }
  }
  if (r.cli) {
    const v = median(r.cli.versionBundle);
    out.push({ text: '`postern --version` under 80 ms', measured: `${fmt(v)} ms (bundle; \`node -e 0\` alone: ${fmt(median(r.cli.nodeFloor))} ms)`, met: v < 80 });
  }
  if (r.sessions) {
    const b = r.sessions.find((s) => s.path === 'b');
    const d = r.sessions.find((s) => s.path === 'd');
    if (b && d) {
      out.push({
        text: 'Per-session memory of the proxy below the jump host sshd\'s per-connection memory',
        measured: `${fmt(d.perSessionRssKb)} KiB (proxy RSS growth) vs ${fmt(b.perSessionPssKb)} KiB PSS (${fmt(b.perSessionRssKb)} KiB RSS) of sshd per connection, ${d.target} sessions`,
        met: d.perSessionRssKb < b.perSessionPssKb,
      });
      out.push({ text: `${d.target} sessions held through the proxy, none dropped`, measured: `${d.alive}/${d.target} alive (jump host: ${b.alive}/${b.target})`, met: d.alive === d.target });
    }
  }
  if (r.tunnel) out.push(tunnelTarget(r.tunnel));
  const echoTarget = 'Web terminal echo p99 ≤ 2× `ssh -tt` to the node';
  if (r.echo && r.echo.web.values.length > 0 && r.echo.ssh.values.length > 0) {
    const p99 = echoP99(r.echo.web);
    const floor = echoP99(r.echo.ssh);
    out.push({ text: echoTarget, measured: `p99 ${fmt(p99)} vs ${fmt(floor)} ms (${ratio(p99, floor)}); p50 ${fmt(median(r.echo.web.values))} vs ${fmt(median(r.echo.ssh.values))} ms${failed(r.echo.web)}`, met: p99 <= 2 * floor && r.echo.web.failures.length === 0 });
    const browser = r.echo.browserFloor;
    const wsNode = r.echo.wsNode;
    if (wsNode?.values.length) {
      // Not a target of its own: what of the web path is the proxy's, without the browser's.
      const x = echoP99(wsNode);
      const why = browser?.values.length ? `; Chromium to a bare echo server alone: p99 ${fmt(echoP99(browser))} ms (${ratio(echoP99(browser), floor)})` : '';
      out.push({ text: 'The same, from Node\'s `ws` (the proxy\'s share, no browser)', measured: `p99 ${fmt(x)} vs ${fmt(floor)} ms (${ratio(x, floor)})${why}${failed(wsNode)}`, met: x <= 2 * floor && wsNode.failures.length === 0 });
    }
  } else {
    out.push({ text: echoTarget, measured: `not measured${r.echo?.web.failures[0] ? `: ${r.echo.web.failures[0]}` : ''}`, met: r.echo ? false : undefined });
  }
  return out;
}

/** The targets as a markdown table. */
export function targetTable(ts: Target[]): string {
  return [
    '| Target | This run | Met |',
    '| --- | --- | --- |',
    ...ts.map((t) => `| ${t.text} | ${t.measured} | ${t.met === undefined ? 'n/a' : t.met ? 'met' : '**missed**'} |`),
  ].join('\n');
}

/** The machine as markdown. */
export function machineText(m: Machine, r: Results): string {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memoryGiB} GiB; Linux ${m.kernel}`,
    `- Node ${m.node}; ${m.openssh}`,
    `- ssh2's native crypto binding: ${m.ssh2NativeCrypto}`,
    `- CLI measured as: ${m.cli}`,
    `- Ciphers: ${Object.entries(r.ciphers).map(([k, v]) => `${k}: ${v}`).join('; ')}`,
    `- Load average (1 min) at the start and after each measurement: ${Object.entries(r.load).map(([k, v]) => `${k} ${v[0]}`).join(', ')}`,
    `- Settings: ${Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', ')}; run took ${Math.round(r.seconds)} s on ${r.date}`,
  ].join('\n');
}

const BEGIN = '<!-- bench:begin (written by npm run bench; edit outside these markers) -->';
const END = '<!-- bench:end -->';

/** Replaces the generated part of docs/benchmarks.md (or writes a bare file with it). */
export function writeDoc(path: string, r: Results): void {
  const generated = [
    BEGIN,
    '',
    `### Latest run (${r.date})`,
    '',
    table(r),
    '',
    '### Targets',
    '',
    targetTable(targets(r)),
    '',
    '### Machine',
    '',
    machineText(r.machine, r),
    '',
    END,
  ].join('\n');
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const i = old.indexOf(BEGIN);
  const j = old.indexOf(END);
  const text = i >= 0 && j > i ? old.slice(0, i) + generated + old.slice(j + END.length) : `# Benchmarks\n\n${generated}\n`;
  writeFileSync(path, text);
}
