/** Starting a real `postern serve` as a child process on loopback ports, for tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSTERN_BIN } from './cli.ts';
import { TEST_SERVE_ENV } from './auth.ts';

/** A running serve. */
export interface ServeProcess {
  proc: ChildProcess;
  dataDir: string;
  /** HOST:PORT of the web API. */
  web: string;
  auth: string;
  caPin: string;
  ready: string;
  stderr: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

/** Starts serve with loopback ports (and the test scrypt cost); resolves on its ready line. */
export function startServe(opts: { dataDir?: string; args?: string[]; env?: Record<string, string> } = {}): Promise<ServeProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'postern-data-'));
  const args = opts.args ?? ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example'];
  const proc = spawn(process.execPath, [POSTERN_BIN, 'serve', '--data-dir', dataDir, ...args], {
    env: { ...process.env, NO_COLOR: '1', POSTERN_FROM_SOURCE: '1', ...TEST_SERVE_ENV, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`serve did not get ready in time\n${err}`)); }, 30_000);
    let ready = false;
    proc.once('exit', (code) => { if (ready) return; clearTimeout(timer); reject(new Error(`serve exited with ${code} before it was ready\n${out}\n${err}`)); });
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('ready:'));
      if (!line || ready) return;
      clearTimeout(timer);
      ready = true;
      const field = (k: string): string => (new RegExp(`${k}=(\\S+)`).exec(line) ?? [])[1] ?? '';
      resolve({
        proc, dataDir, ready: line,
        web: field('web').replace(/^https:\/\//, ''),
        auth: field('auth'),
        caPin: field('ca-pin'),
        stderr: () => err,
        async stop() { proc.kill('SIGTERM'); return exited; },
        async kill() { proc.kill('SIGKILL'); await exited; },
      });
    });
  });
}
