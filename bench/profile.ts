/**
 * `node bench/profile.ts`: where Postern spends its CPU, with `node --cpu-prof`, on the
 * same loopback world as `npm run bench`. Profiles `postern --version`, `postern proxy ssh`
 * (the ProxyCommand) and `postern ssh` while BENCH_MIB MiB go through them, and the serve
 * process while the same goes through its SSH listener (`ssh -J`), and the ProxyCommand's
 * start up to the node's banner. Prints, for each, the
 * self time by module and the hottest functions; the bundle's lines are mapped back to
 * the module they came from by esbuild's `// path` comments.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POSTERN_BIN } from '../test/helpers/cli.ts';
import { pathCmd } from './paths.ts';
import type { PathId } from './paths.ts';
import { runTimed } from './proc.ts';
import { buildBundle, cliEnv, setUp, writeRandomFile } from './setup.ts';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const mib = Number(process.env.BENCH_MIB ?? 256);
const out = mkdtempSync(join(tmpdir(), 'postern-profile-'));
const log = (s: string): void => { process.stderr.write(`[profile] ${s}\n`); };

/** For each file of the bundle, its module boundaries: [first line (0-based), module path]. */
const moduleLines = new Map<string, Array<[number, string]>>();
function moduleOf(url: string, line: number): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (!path.includes('/dist/')) return path.replace(/^.*\/(node_modules|src)\//, '$1/');
  let marks = moduleLines.get(path);
  if (!marks) {
    marks = [];
    const lines = readFileSync(path, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^\/\/ ((?:node_modules|src)\/\S+)$/.exec(lines[i]);
      if (m) marks.push([i, m[1]]);
    }
    moduleLines.set(path, marks);
  }
  let found = path.replace(/^.*\/dist\//, 'dist/');
  for (const [at, name] of marks) {
    if (at > line) break;
    found = name;
  }
  return found;
}

/** Self time by module and by function, ms. */
function summarize(file: string, title: string): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const mod = new Map<string, number>();
  const fn = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const n = byId.get(p.samples[i]);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    total += ms;
    const m = functionName === '(idle)' || functionName === '(garbage collector)' || functionName === '(program)' ? functionName : moduleOf(url, lineNumber);
    mod.set(m, (mod.get(m) ?? 0) + ms);
    const f = `${functionName || '(anonymous)'}  [${m}]`;
    fn.set(f, (fn.get(f) ?? 0) + ms);
  }
  const busy = total - (mod.get('(idle)') ?? 0);
  const top = (m: Map<string, number>, k: number): string => [...m].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, ms]) => `    ${ms.toFixed(0).padStart(6)} ms ${(100 * ms / busy).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  process.stdout.write(`\n## ${title}\n  wall ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms, busy ${busy.toFixed(0)} ms (idle ${(mod.get('(idle)') ?? 0).toFixed(0)} ms)\n  by module:\n${top(mod, 14)}\n  by function:\n${top(fn, 14)}\n`);
}

/** The newest profile in a directory, waiting (bounded) for a process still writing it. */
async function newest(dir: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort() : [];
    if (files.length) return join(dir, files[files.length - 1]);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no profile in ${dir}`);
}

const prof = (dir: string): Record<string, string> => ({ NODE_OPTIONS: `--cpu-prof --cpu-prof-interval=200 --cpu-prof-dir=${dir}` });

buildBundle();
// The version first, with no cluster running.
const vdir = join(out, 'version');
for (let i = 0; i < 3; i++) await runTimed({ cmd: process.execPath, args: [POSTERN_BIN, '--version'], env: cliEnv('bundle', prof(vdir)) }, { timeoutMs: 20_000 });
summarize(await newest(vdir), '`postern --version` (bundle, compile cache warm)');

const serveDir = join(out, 'serve');
const env = await setUp({ cli: 'bundle', loginUsers: 0, log, serveEnv: prof(serveDir) });
const data = writeRandomFile(join(out, 'data'), mib);
try {
  // The ProxyCommand's start: with stdin at EOF it connects, gets the node's banner, and
  // ends normally (so the profile is written).
  const sdir = join(out, 'proxy-ssh-start');
  for (let i = 0; i < 3; i++) {
    await runTimed({ cmd: process.execPath, args: [POSTERN_BIN, 'proxy', 'ssh', `${env.login}@${env.nodes[0].name}.test.example:22`], env: { ...env.posternEnv, ...prof(sdir) } }, { timeoutMs: 20_000 });
  }
  summarize(await newest(sdir), '`postern proxy ssh` from start to the node\'s banner (stdin at EOF)');
  for (const [id, name] of [['c', 'proxy-ssh'], ['e', 'postern-ssh'], ['d', 'serve-d']] as Array<[PathId, string]>) {
    const dir = join(out, name);
    const c = pathCmd(env, id, 'cat > /dev/null');
    if (id !== 'd') c.env = { ...c.env, ...prof(dir) };
    // ssh ends its ProxyCommand with a signal, and a profile is written only on a normal
    // exit: a shell in between takes the signal, and postern then ends on its closed stdin.
    if (id === 'c') c.args.unshift('-o', `ProxyCommand sh -c '"${process.execPath}" "${POSTERN_BIN}" proxy ssh %r@%h:%p; true'`);
    const input = openSync(data, 'r');
    const t = await runTimed(c, { stdinFd: input, timeoutMs: 300_000 });
    closeSync(input);
    log(`${id}: ${mib} MiB in ${t.ms.toFixed(0)} ms (${(mib * 1.048576 / (t.ms / 1000)).toFixed(1)} MB/s), exit ${t.code} ${t.stderr.trim().slice(-300)}`);
    if (id !== 'd') summarize(await newest(dir), `${id === 'c' ? '`postern proxy ssh` (ProxyCommand, path c)' : '`postern ssh` (path e)'}: ${mib} MiB through it`);
  }
} finally {
  await env.stop();
}
summarize(await newest(serveDir), `\`postern serve\` over its whole life: setup, then ${mib} MiB through its SSH listener for c, e and d`);
rmSync(data, { force: true });
log(`profiles in ${out}`);
