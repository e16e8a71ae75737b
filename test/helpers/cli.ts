/** Running the real CLI in tests: as a child process (bin/postern) or in-process with captured streams. */
import { spawn } from 'node:child_process';
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
