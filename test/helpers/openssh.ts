/** Real OpenSSH programs for tests: sshd on a loopback port, ssh-agent, and oathtool codes. */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { createConnection } from 'node:net';
import { waitFor } from './wait.ts';
import { PortInUseError, withFreshPort } from './net.ts';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The user the tests run as: the login sshd will accept. */
export const LOCAL_USER = userInfo().username;

/** A running sshd. */
export interface Sshd {
  port: number;
  dir: string;
  hostKeyPub: string;
  log: () => string;
  stop(): Promise<void>;
}

/**
 * Starts `sshd -D -e -f` with its own config, trusting a user CA (an authorized_keys line).
 * sshd must be told its port: without `port`, it gets one that was free and another if that
 * was taken meanwhile; with `port`, a taken port throws a PortInUseError for the caller to
 * handle.
 */
export async function startSshd(opts: { trustedUserCaKeys: string; hostKey?: { privatePath: string; certPath?: string }; extra?: string[]; port?: number }): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sshd-'));
  chmodSync(dir, 0o755);
  let hostKeyPath = opts.hostKey?.privatePath;
  if (!hostKeyPath) {
    hostKeyPath = join(dir, 'ssh_host_ed25519_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyPath]);
  }
  writeFileSync(join(dir, 'user_ca.pub'), opts.trustedUserCaKeys.trim() + '\n');
  const keyPath = hostKeyPath;
  const launch = async (port: number): Promise<Sshd> => {
    const config = [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${keyPath}`,
      ...(opts.hostKey?.certPath ? [`HostCertificate ${opts.hostKey.certPath}`] : []),
      `TrustedUserCAKeys ${join(dir, 'user_ca.pub')}`, 'AuthorizedKeysFile none', 'PasswordAuthentication no',
      'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'StrictModes no', 'UsePAM no', 'PidFile none',
      'PermitRootLogin yes', 'LogLevel VERBOSE', 'AllowTcpForwarding yes', 'MaxStartups 200:30:400', 'MaxSessions 100',
      ...(opts.extra ?? []),
    ];
    writeFileSync(join(dir, 'sshd_config'), config.join('\n') + '\n');
    const { stop, log } = await startSshdProcess(join(dir, 'sshd_config'));
    return { port, dir, hostKeyPub: '', log, stop };
  };
  const sshd = opts.port !== undefined ? await launch(opts.port) : await withFreshPort(launch);
  sshd.hostKeyPub = execFileSync('ssh-keygen', ['-y', '-f', keyPath]).toString().trim();
  return sshd;
}

/**
 * Runs `sshd -D -e -f CONFIG` until it says it listens. Fails with sshd's log when it exits
 * or is silent for 10 s; a PortInUseError when its port was taken.
 */
export async function startSshdProcess(config: string): Promise<{ log: () => string; stop: () => Promise<void> }> {
  const proc: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => { log += d; });
  // A missing sshd is an 'error' with no 'exit': say so instead of waiting out the timeout.
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', (err) => { log += `cannot run /usr/sbin/sshd: ${err.message} (npm test installs openssh-server through its pretest script)\n`; resolve(null); });
  });
  let exitCode: number | null | undefined;
  void exited.then((code) => { exitCode = code; });
  try {
    await waitFor(() => {
      if (log.includes('Server listening')) return true;
      if (exitCode === undefined) return false;
      // sshd's own words for a taken port ("Bind to port N on 127.0.0.1 failed: Address already in use").
      if (/Address already in use/.test(log)) throw new PortInUseError(`sshd's port was taken\n${log}`);
      throw new Error(`sshd exited with ${exitCode}\n${log}`);
    }, { what: 'sshd to listen', timeoutMs: 10_000, intervalMs: 20, detail: () => log });
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return { log: () => log, stop: async () => { proc.kill('SIGTERM'); await exited; } };
}

/** A running ssh-agent on its own socket. */
export interface Agent {
  socket: string;
  stop(): Promise<void>;
}

/**
 * Starts `ssh-agent -D -a SOCKET` and waits until the socket takes connections. Fails with
 * the agent's output when it exits or does not come up within 10 s.
 */
export async function startAgent(opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-agent-'));
  const socket = join(dir, 'agent.sock');
  const proc = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => proc.once('exit', (code) => { exitCode = code; resolve(); }));
  const stop = async (): Promise<void> => { if (exitCode === undefined) proc.kill('SIGTERM'); await exited; };
  try {
    await waitFor(async () => {
      if (exitCode !== undefined) throw new Error(`ssh-agent exited with ${exitCode}`);
      return canConnect(socket);
    }, { what: `ssh-agent's socket ${socket}`, timeoutMs: 10_000, intervalMs: 20, detail: () => `ssh-agent said:\n${output}` });
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, stop };
}

/** Whether a Unix socket accepts a connection now. */
function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** The TOTP code for a secret at an offset of whole steps from now, from oathtool. */
export function oathtoolCode(secret: string, stepOffset = 0): string {
  const at = Math.floor(Date.now() / 1000) + stepOffset * 30;
  return execFileSync('oathtool', ['--totp', '-b', secret, '--now', `@${at}`]).toString().trim();
}

/** The TOTP code of a 30 s step (Unix time / 30), from oathtool. */
export function oathtoolCodeForStep(secret: string, step: number): string {
  return execFileSync('oathtool', ['--totp', '-b', secret, '--now', `@${step * 30}`]).toString().trim();
}
