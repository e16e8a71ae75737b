/** Real OpenSSH programs for tests: sshd on a loopback port, ssh-agent, and oathtool codes. */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (bound and released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

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

/** Starts `sshd -D -e -f` with its own config, trusting a user CA (an authorized_keys line). */
export async function startSshd(opts: { trustedUserCaKeys: string; hostKey?: { privatePath: string; certPath?: string }; extra?: string[]; port?: number }): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sshd-'));
  chmodSync(dir, 0o755);
  const port = opts.port ?? await freePort();
  let hostKeyPath = opts.hostKey?.privatePath;
  if (!hostKeyPath) {
    hostKeyPath = join(dir, 'ssh_host_ed25519_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyPath]);
  }
  writeFileSync(join(dir, 'user_ca.pub'), opts.trustedUserCaKeys.trim() + '\n');
  const config = [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKeyPath}`,
    ...(opts.hostKey?.certPath ? [`HostCertificate ${opts.hostKey.certPath}`] : []),
    `TrustedUserCAKeys ${join(dir, 'user_ca.pub')}`, 'AuthorizedKeysFile none', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'StrictModes no', 'UsePAM no', 'PidFile none',
    'PermitRootLogin yes', 'LogLevel VERBOSE', 'AllowTcpForwarding yes', 'MaxStartups 200:30:400', 'MaxSessions 100',
    ...(opts.extra ?? []),
  ];
  writeFileSync(join(dir, 'sshd_config'), config.join('\n') + '\n');
  const proc: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => { log += d; });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let started = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start\n${log}`)), 10_000);
    const check = (): void => { if (!started && log.includes('Server listening')) { started = true; clearTimeout(timer); resolve(); } };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => { if (!started) { clearTimeout(timer); reject(new Error(`sshd exited with ${code}\n${log}`)); } });
  });
  const hostKeyPub = execFileSync('ssh-keygen', ['-y', '-f', hostKeyPath]).toString().trim();
  return { port, dir, hostKeyPub, log: () => log, async stop() { proc.kill('SIGTERM'); await exited; } };
}

/** A running ssh-agent on its own socket. */
export interface Agent {
  socket: string;
  stop(): Promise<void>;
}

/** Starts `ssh-agent -D -a SOCKET`. */
export async function startAgent(): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-agent-'));
  const socket = join(dir, 'agent.sock');
  const proc = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const { existsSync } = await import('node:fs');
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  return { socket, async stop() { proc.kill('SIGTERM'); await exited; } };
}

/** The TOTP code for a secret at an offset of whole steps from now, from oathtool. */
export function oathtoolCode(secret: string, stepOffset = 0): string {
  const at = Math.floor(Date.now() / 1000) + stepOffset * 30;
  return execFileSync('oathtool', ['--totp', '-b', secret, '--now', `@${at}`]).toString().trim();
}
