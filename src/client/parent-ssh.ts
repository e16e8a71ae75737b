/**
 * How the OpenSSH `ssh` that started this ProxyCommand picks its keys: whether it would take
 * a certificate that appears in the ssh-agent after it started (not with IdentitiesOnly
 * yes, nor with IdentityAgent none), and which agent it asks. Read from `ssh -G` run with
 * that ssh's own arguments (from /proc, so Linux only); undefined when it cannot tell.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** What the parent ssh does with agent keys. */
export interface ParentSshKeys {
  /** IdentitiesOnly yes: only keys named by IdentityFile/CertificateFile, loaded at its start. */
  identitiesOnly: boolean;
  /** IdentityAgent: 'none', a socket path, or undefined for $SSH_AUTH_SOCK. */
  identityAgent?: string;
}

/** The arguments of process `pid` when it is OpenSSH's ssh; undefined otherwise. */
function sshArgsOf(pid: number): string[] | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  if (argv.at(-1) === '') argv.pop();
  if (argv.length < 2 || basename(argv[0]) !== 'ssh') return undefined;
  return argv.slice(1);
}

/** Reads `ssh -G`'s answer for the keys. */
export function parseSshG(text: string): ParentSshKeys {
  const get = (key: string): string | undefined => new RegExp(`^${key} (.*)$`, 'm').exec(text)?.[1];
  const agent = get('identityagent');
  return { identitiesOnly: get('identitiesonly') === 'yes', ...(agent !== undefined ? { identityAgent: agent } : {}) };
}

/** How the ssh with process id `ppid` (this ProxyCommand's parent) uses agent keys; undefined when it cannot tell. */
export function parentSshKeys(ppid: number, env: Record<string, string | undefined>): ParentSshKeys | undefined {
  const args = sshArgsOf(ppid);
  if (!args) return undefined;
  try {
    // -G prints the configuration for these arguments and exits; it connects to nothing.
    const text = execFileSync('ssh', ['-G', ...args], { encoding: 'utf8', env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return parseSshG(text);
  } catch {
    return undefined;
  }
}
