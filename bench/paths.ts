/**
 * The five ways to reach a node that every measurement compares:
 *   a  direct `ssh` to the node's sshd
 *   b  `ssh -J` through a plain OpenSSH sshd jump host (the reference)
 *   c  `ssh` with `ProxyCommand postern proxy ssh` (the block `postern config` prints)
 *   d  `ssh -J` through Postern's SSH listener
 *   e  `postern ssh`
 */
import { POSTERN_BIN } from '../test/helpers/cli.ts';
import type { Cmd } from './proc.ts';
import type { BenchEnv } from './setup.ts';

/** A path's id. */
export type PathId = 'a' | 'b' | 'c' | 'd' | 'e';

/** Every path, in table order. */
export const PATHS: PathId[] = ['a', 'b', 'c', 'd', 'e'];

/** What each path is, for the table. */
export const PATH_LABELS: Record<PathId, string> = {
  a: '(a) direct ssh',
  b: '(b) ssh -J OpenSSH jump host',
  c: '(c) ssh + ProxyCommand postern proxy ssh',
  d: '(d) ssh -J Postern SSH listener',
  e: '(e) postern ssh',
};

/** The command that runs `remote` (one shell string) on node `node` (0 or 1) through a path. */
export function pathCmd(env: BenchEnv, id: PathId, remote: string, node = 0): Cmd {
  const name = env.nodes[node].name;
  const alias = `bench-node${node + 1}`;
  const ssh = (args: string[]): Cmd => ({ cmd: 'ssh', args, env: env.sshEnv });
  switch (id) {
    case 'a': return ssh(['-F', env.sshConfig, alias, remote]);
    case 'b': return ssh(['-F', env.sshConfig, '-J', 'bench-jump', alias, remote]);
    case 'c': return ssh(['-F', env.proxyCommandConfig, `${env.login}@${name}.test.example`, remote]);
    case 'd': return ssh(['-F', env.sshConfig, '-J', `${env.login}@127.0.0.1:${env.cluster.sshPort}`, `${env.login}@${name}`, remote]);
    case 'e': return { cmd: process.execPath, args: [POSTERN_BIN, 'ssh', `${env.login}@${name}`, remote], env: env.posternEnv };
  }
}

/** The rotation of PATHS that round `round` uses, so no path always goes first. */
export function roundOrder<T>(round: number, ids: readonly T[]): T[] {
  const k = round % ids.length;
  return [...ids.slice(k), ...ids.slice(0, k)];
}
