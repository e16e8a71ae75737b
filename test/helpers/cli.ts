/** Running the real CLI in tests: as a child process (bin/postern) or in-process with captured streams. */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import type { Deps } from '../../src/cli/deps.ts';
import { noSignals, realClients } from '../../src/cli/deps.ts';
import { systemClock } from '../../src/core/clock.ts';

/** The launcher. */
export const POSTERN_BIN = fileURLToPath(new URL('../../bin/postern', import.meta.url));

/** What a finished command left. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `postern ARGS` as a child process (the way a user does) and waits for it. */
export function runPostern(args: string[], opts: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [POSTERN_BIN, ...args], {
      env: { ...process.env, NO_COLOR: '1', POSTERN_FROM_SOURCE: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`postern ${args.join(' ')} timed out\n${stderr}`)); }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `main(argv, deps)` in this process with captured output. */
export async function runMain(argv: string[], opts: { env?: Record<string, string | undefined>; input?: string; homeDir?: string; cwd?: string; now?: () => Date } = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => { out += d; });
  stderr.on('data', (d) => { err += d; });
  stdin.end(opts.input ?? '');
  const deps: Deps = {
    io: { stdin, stdout, stderr },
    env: { NO_COLOR: '1', ...opts.env },
    homeDir: opts.homeDir ?? '/nonexistent',
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    clock: opts.now ? { now: opts.now } : systemClock,
    selfCommand: POSTERN_BIN,
    signals: noSignals,
    openTerminal: () => undefined,
    clients: realClients,
  };
  const code = await main(argv, deps);
  return { code, stdout: out, stderr: err };
}

/**
 * Runs a program in its own session, with no controlling terminal (/dev/tty cannot be
 * opened), as under a CI runner or a daemon; stdin gets `input` and then ends.
 */
export function runDetached(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** A command on a terminal, with its screen so far (stdout and stderr) and its exit status. */
export interface OnTty {
  /** What is written to its stdin is typed on the terminal. */
  proc: ChildProcessWithoutNullStreams;
  out: () => string;
  /** The exit status, on the process's exit. */
  exit: Promise<number | null>;
  /** The exit status once its output is closed too; with `timeoutMs`, fails when it did not end in time. */
  closed: Promise<number | null>;
}

/**
 * Runs the shell command `cmd` on a terminal: util-linux `script` gives it a PTY (TERM
 * xterm unless `env` says otherwise). With `timeoutMs`, kills it at that age and `closed`
 * fails with the screen (and `detail()`).
 */
export function onTty(cmd: string, env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' }, opts: { timeoutMs?: number; detail?: () => string } = {}): OnTty {
  const proc = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const closed = new Promise<number | null>((resolve, reject) => {
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} did not end in ${opts.timeoutMs} ms; the terminal showed:\n${out}${opts.detail ? `\n${opts.detail()}` : ''}`));
    }, opts.timeoutMs);
    proc.once('close', (code) => { clearTimeout(timer); resolve(code); });
  });
  closed.catch(() => {});
  return { proc, out: () => out, exit, closed };
}
