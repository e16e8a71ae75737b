/**
 * Live sessions and their joins, from the outside: the owner's shell through the real
 * `ssh -A -tt` with ProxyCommand `postern proxy ssh`, `postern sessions ls`, `postern join`
 * (piped or on a terminal), a role that may join, and the cluster split in one auth server
 * and two proxies that relay joins to each other (docs/ha.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { proxyCommandLine, userSshConfig } from './cluster.ts';
import type { TestCluster } from './cluster.ts';
import { onTty, runPostern, POSTERN_BIN } from './cli.ts';
import type { CliResult, OnTty } from './cli.ts';
import { startServe } from './serve.ts';
import type { ServeProcess } from './serve.ts';
import { LOCAL_USER } from './openssh.ts';
import { waitForText } from './wait.ts';
import type { ActiveSession } from '../../src/api/types.ts';

/** The live sessions the user logged in at `home` may see, as `postern sessions ls --format json` lists them. */
export async function sessionsOf(home: string): Promise<ActiveSession[]> {
  const r = await runPostern(['sessions', 'ls', '--format', 'json'], { env: { TSH_HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ActiveSession[];
}

/**
 * The refused joins of alice's session `id`: carol (whose role may only observe) as peer and
 * bob (no join rule) exit 1 with the proxy's message and nothing on stdout; a join of an
 * unknown id by the user logged in at `unknownBy` exits 1 saying there is no such session.
 */
export async function assertJoinsRefused(id: string, homes: { carol: string; bob: string; unknownBy: string }): Promise<void> {
  const carolPeer = await runPostern(['join', id, '--mode', 'peer'], { env: { TSH_HOME: homes.carol } });
  assert.equal(carolPeer.code, 1, carolPeer.stderr);
  assert.match(carolPeer.stderr, /may not join the session of alice/);
  assert.equal(carolPeer.stdout, '');
  const denied = await runPostern(['join', id, '--mode', 'observer'], { env: { TSH_HOME: homes.bob } });
  assert.equal(denied.code, 1, denied.stderr);
  assert.match(denied.stderr, /error: .*may not join the session of alice/);
  assert.equal(denied.stdout, '');
  const unknown = await runPostern(['join', 'NoSuchSession42', '--mode', 'observer'], { env: { TSH_HOME: homes.unknownBy } });
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.match(unknown.stderr, /no live session NoSuchSession42/);
}

/** A running `postern join` without a terminal, with its output so far. */
export interface Joiner { proc: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exit: Promise<number | null> }

/** Starts `postern join ID --mode MODE` as the user logged in at `home`; killed when `cluster` stops, if given. */
export function joiner(home: string, id: string, mode: string, cluster?: TestCluster): Joiner {
  const proc = spawn(process.execPath, [POSTERN_BIN, 'join', id, '--mode', mode], { env: { ...process.env, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', NO_COLOR: '1' } });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  cluster?.onStop(async () => { proc.kill(); });
  return { proc, out: () => out, err: () => err, exit };
}

/** A `postern join` on a terminal (util-linux `script`): what is written to `proc.stdin` is typed on it. */
export function joinOnTty(home: string, id: string, mode: string): OnTty {
  return onTty(`env TSH_HOME=${home} POSTERN_FROM_SOURCE=1 NO_COLOR=1 ${process.execPath} ${POSTERN_BIN} join ${id} --mode ${mode}`);
}

/** The owner's interactive shell on web1, with its screen so far. */
export interface Shell { sh: ChildProcessWithoutNullStreams; out: () => string; exit: Promise<number | null>; type(line: string): void }

/**
 * `user`'s (alice's) interactive shell on web1.test.example: the real `ssh -A -tt` with
 * ProxyCommand `postern proxy ssh` as the user logged in at `home`, its key and certificate
 * in the agent at `sock` (addToAgent). Killed when `cluster` stops.
 */
export function ownerShell(cluster: TestCluster, home: string, sock: string, user = 'alice'): Shell {
  const cfg = userSshConfig(join(cluster.work, `ssh_config_${randomInt(1e9)}`), home, user, ['  ForwardAgent yes', proxyCommandLine(home)]);
  const sh = spawn('ssh', ['-F', cfg, '-tt', `${LOCAL_USER}@web1.test.example`], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
  let out = '';
  sh.stdout.on('data', (d) => { out += d; });
  sh.stderr.on('data', (d) => { out += d; });
  const exit = new Promise<number | null>((r) => sh.once('exit', (code) => r(code)));
  cluster.onStop(async () => { sh.kill(); });
  return { sh, out: () => out, exit, type: (line) => { sh.stdin.write(`${line}\n`); } };
}

/** The owner types `echo WHAT-$((N+1))` and waits for WHAT-(N+1): the shell goes on. */
export async function stillTypes(sh: Shell, what: string): Promise<void> {
  const n = randomInt(1000, 1_000_000);
  sh.type(`echo ${what}-$((${n}+1))`);
  await waitForText(sh.out, `${what}-${n + 1}`);
}

/** Adds the role `name`: logins as LOCAL_USER on env=prod, and it may join sessions of users with the access role in `modes`. */
export async function addJoinRole(cluster: TestCluster, name: string, modes: string[]): Promise<void> {
  const file = join(cluster.work, `${name}.yaml`);
  writeFileSync(file, [
    `name: ${name}`, `logins: [${LOCAL_USER}]`, 'node_labels: { env: [prod] }',
    'join_sessions:', '  - roles: [access]', `    modes: [${modes.join(', ')}]`, '',
  ].join('\n'));
  const r = await cluster.admin(['roles', 'add', '--file', file]);
  assert.equal(r.code, 0, r.stderr);
}

/** A cluster split in roles: its auth servers, admin commands against the first, and its proxies. */
export interface SplitCluster {
  auth: ServeProcess;
  auths: ServeProcess[];
  admin: (args: string[]) => Promise<CliResult>;
  proxies: ServeProcess[];
  /** Points the TestCluster's helpers (`user`, `node`, `admin`…), which go through `serve.web`, at proxy `p`. */
  through: (p: ServeProcess) => void;
}

/**
 * Starts `auths` auth servers (serve --roles auth with `authArgs`: one storage for more than
 * one) and `proxies` proxies joined with proxy tokens and given every auth server; all
 * stopped with `cluster`.
 */
export async function startSplitCluster(cluster: TestCluster, authArgs: string[], opts: { auths?: number; proxies?: number } = {}): Promise<SplitCluster> {
  const args = ['--roles', 'auth', '--auth-addr', '127.0.0.1:0', '--cluster-name', 'test.example', ...authArgs];
  const auths: ServeProcess[] = [];
  for (let i = 0; i < (opts.auths ?? 1); i++) {
    const a = await startServe({ args });
    cluster.onStop(() => a.stop());
    auths.push(a);
  }
  const [auth] = auths;
  const admin = (a: string[]): Promise<CliResult> => runPostern([...a, '--data-dir', auth.dataDir]);
  const proxies: ServeProcess[] = [];
  for (let i = 0; i < (opts.proxies ?? 2); i++) {
    const tok = await admin(['tokens', 'add', '--type', 'proxy', '--ttl', '10m', '--format', 'json']);
    assert.equal(tok.code, 0, tok.stderr);
    const { token } = JSON.parse(tok.stdout) as { token: string };
    const p = await startServe({ args: ['--roles', 'proxy', '--auth-server', auths.map((a) => a.auth).join(','), '--join-token', token, '--ca-pin', auth.caPin, '--web-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0'] });
    cluster.onStop(() => p.stop());
    proxies.push(p);
  }
  return { auth, auths, admin, proxies, through: (p) => { cluster.serve = { ...auth, web: p.web, caPin: auth.caPin }; } };
}

/** Starts a split cluster of one auth server with `session_recording: proxy` and two proxies. */
export async function startRecordingProxies(cluster: TestCluster): Promise<SplitCluster> {
  const cfg = join(cluster.work, 'auth.yaml');
  writeFileSync(cfg, 'cluster:\n  session_recording: proxy\n');
  return startSplitCluster(cluster, ['--config', cfg]);
}
