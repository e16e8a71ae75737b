/**
 * The benchmark's world on loopback, built from the outside as an admin and an engineer
 * would: `postern serve`, a user signed up and logged in, two real sshd nodes registered
 * with `postern nodes add` (host certificates), and a plain OpenSSH sshd as the jump host
 * the proxy is compared with. That jump host trusts the same user CA, so one key and
 * certificate serve both hops, and its host key is pinned in a known_hosts file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestCluster, TEST_PASSWORD, userFiles } from '../test/helpers/cluster.ts';
import { runPostern, POSTERN_BIN } from '../test/helpers/cli.ts';
import { startServe } from '../test/helpers/serve.ts';
import { startSshd, LOCAL_USER, oathtoolCode } from '../test/helpers/openssh.ts';
import type { Sshd } from '../test/helpers/openssh.ts';

/** The repository's root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Writes `mib` MiB of random bytes (one random MiB over and over) to `path`, for sending through a path; returns `path`. */
export function writeRandomFile(path: string, mib: number): string {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) writeSync(fd, chunk);
  closeSync(fd);
  return path;
}

/** How the CLI is run: the esbuild bundle users get, or the TypeScript sources. */
export type CliMode = 'bundle' | 'source';

/** A user made only to be logged in by the login measurement. */
export interface LoginUser {
  name: string;
  secret: string;
}

/** Everything the measurements drive. */
export interface BenchEnv {
  cluster: TestCluster;
  cli: CliMode;
  /** The Postern user the paths connect as, and the TSH_HOME it logged in to. */
  user: string;
  home: string;
  /** The login on the nodes (a principal of the certificate). */
  login: string;
  nodes: Array<{ name: string; port: number }>;
  jump: Sshd & { pid: number };
  servePid: number;
  /** ssh_config for paths a, b and d: node and jump host aliases, key, certificate, known_hosts. */
  sshConfig: string;
  /** ssh_config from `postern config` for path c. */
  proxyCommandConfig: string;
  /** Environment for `postern` client commands (TSH_HOME, bundle or sources). */
  posternEnv: NodeJS.ProcessEnv;
  /** Environment for `ssh`: the same (Node 24 first on PATH for the ProxyCommand's `#!/usr/bin/env node`, TSH_HOME for it). */
  sshEnv: NodeJS.ProcessEnv;
  loginUsers: LoginUser[];
  /** A signed-up user for the web echo measurement (logs in on the web with a fresh code). */
  webUser?: LoginUser;
  stop(): Promise<void>;
}

/** A fresh TOTP secret (base32). */
function totpSecret(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return [...randomBytes(32)].map((b) => alphabet[b & 31]).join('');
}

/**
 * Waits, when the current 30 s TOTP step ends within `minLeftS`, for the next one: a code
 * for the step before (as signup uses) is refused once the server's clock has moved two
 * steps on, which happens when a step boundary falls between making and checking it.
 */
async function awaitTotpRoom(minLeftS = 10): Promise<void> {
  const left = 30 - ((Date.now() / 1000) % 30);
  if (left < minLeftS) await new Promise((r) => setTimeout(r, left * 1000 + 200));
}

/** The environment a child `postern` runs with in the chosen mode. */
export function cliEnv(cli: CliMode, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...extra };
  if (cli === 'bundle') delete env.POSTERN_FROM_SOURCE;
  else env.POSTERN_FROM_SOURCE = '1';
  return env;
}

/** The pid of the sshd started with the config in `dir` (the helper keeps it to itself). */
function sshdPid(dir: string): number {
  const want = join(dir, 'sshd_config');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // sshd retitles its listener ("sshd: /usr/sbin/sshd -D -e -f PATH [listener] …"); its parent is this process.
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && cmdline.includes(want)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no sshd running with ${want}`);
}

/** Builds the bundle (`npm run build`) so the CLI is measured as shipped. */
export function buildBundle(): void {
  execFileSync(process.execPath, ['scripts/build.ts'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  assert.ok(existsSync(join(ROOT, 'dist', 'postern.mjs')), 'the build left no dist/postern.mjs');
}

/**
 * The proxy's unauthenticated-connection limits, as the jump host's sshd has them in the
 * same run (test/helpers/openssh.ts: MaxStartups 200:30:400). Every session of row 4 comes
 * from 127.0.0.1, 25 at once: Postern's defaults (sshd's 10:30:100, 5 per source) would
 * drop some of them by design, which is the defence working, not a session dropped.
 */
const BENCH_SSH_LIMITS = ['--max-startups', '200:30:400', '--per-source-max-startups', '400'];

/**
 * Sets everything up; `loginUsers` users are signed up (not logged in) for the login
 * measurement; `serveArgs` are added to `postern serve`'s flags.
 */
export async function setUp(opts: { cli: CliMode; loginUsers: number; webUser?: boolean; log: (s: string) => void; serveEnv?: Record<string, string>; serveArgs?: string[] }): Promise<BenchEnv> {
  const c = new TestCluster();
  const stops: Array<() => Promise<unknown>> = [];
  try {
    c.serve = await startServe({
      args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example', ...BENCH_SSH_LIMITS, ...(opts.serveArgs ?? [])],
      // An empty POSTERN_FROM_SOURCE makes bin/postern load the bundle.
      // An empty POSTERN_TEST_SCRYPT_LOG2N keeps production's scrypt cost: the login is measured as users see it.
      env: { POSTERN_FROM_SOURCE: opts.cli === 'source' ? '1' : '', POSTERN_TEST_SCRYPT_LOG2N: '', ...opts.serveEnv },
    });
    opts.log(`serve: ${c.serve.ready}`);
    const user = 'bench';
    await awaitTotpRoom();
    const home = await c.user(user, LOCAL_USER, totpSecret());
    const nodes: BenchEnv['nodes'] = [];
    for (const name of ['web1', 'web2']) {
      // Registered with `nodes add` as TestCluster does; started here to add one setting:
      // SHLVL=1 in the session keeps bash from sourcing the login's ~/.bashrc for a remote
      // command (on a developer's machine that may cost more than the whole connection, the
      // same constant on every path, which would hide the differences being measured).
      const n = await c.node(name, 'env=bench', { start: false });
      const sshd = await startSshd({
        trustedUserCaKeys: readFileSync(join(n.dir, 'user_ca.pub'), 'utf8'),
        hostKey: { privatePath: n.hostKey, certPath: join(n.dir, `${name}-cert.pub`) },
        port: n.port,
        extra: ['SetEnv SHLVL=1'],
      });
      stops.push(() => sshd.stop());
      nodes.push({ name, port: n.port });
    }
    opts.log(`nodes: ${nodes.map((n) => `${n.name}=127.0.0.1:${n.port}`).join(' ')}`);

    // The OpenSSH jump host: a plain sshd with AllowTcpForwarding yes (the helper's config)
    // trusting the same user CA as the nodes.
    const userCa = readFileSync(join(c.nodes.get('web1')!.dir, 'user_ca.pub'), 'utf8');
    const jumpSshd = await startSshd({ trustedUserCaKeys: userCa });
    stops.push(() => jumpSshd.stop());
    const jump = { ...jumpSshd, pid: sshdPid(jumpSshd.dir) };
    opts.log(`jump host: sshd pid ${jump.pid} on 127.0.0.1:${jump.port}`);

    const f = userFiles(home, user);
    const benchKnownHosts = join(c.work, 'bench_known_hosts');
    writeFileSync(benchKnownHosts, `bench-jump ${jump.hostKeyPub}\n`);
    const sshConfig = join(c.work, 'ssh_config_bench');
    writeFileSync(sshConfig, [
      ...nodes.flatMap((n, i) => [`Host bench-node${i + 1}`, '  HostName 127.0.0.1', `  Port ${n.port}`, `  HostKeyAlias ${n.name}.test.example`]),
      'Host bench-jump', '  HostName 127.0.0.1', `  Port ${jump.port}`, '  HostKeyAlias bench-jump',
      'Host *', `  User ${LOCAL_USER}`,
      `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none',
      `  UserKnownHostsFile ${f.knownHosts} ${benchKnownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes',
      '  LogLevel ERROR', '  ConnectTimeout 20', '',
    ].join('\n'));

    const posternEnv = cliEnv(opts.cli, { TSH_HOME: home });
    // `postern config` carries POSTERN_FROM_SOURCE into the ProxyCommand it prints, and the
    // test helper that runs it sets it: (c) must run the same CLI as the other paths.
    const cfg = await runPostern(['config'], { env: { TSH_HOME: home, POSTERN_SELF: POSTERN_BIN, POSTERN_FROM_SOURCE: opts.cli === 'source' ? '1' : '' } });
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.equal(/POSTERN_FROM_SOURCE/.test(cfg.stdout), opts.cli === 'source', `the ProxyCommand of (c) must run the ${opts.cli}:\n${cfg.stdout}`);
    const proxyCommandConfig = join(c.work, 'ssh_config_postern');
    writeFileSync(proxyCommandConfig, `${cfg.stdout}\nHost *\n  BatchMode yes\n  IdentityAgent none\n  LogLevel ERROR\n  ConnectTimeout 20\n`);

    const loginUsers: LoginUser[] = [];
    const names = [...Array.from({ length: opts.loginUsers }, (_, i) => `login${i + 1}`), ...(opts.webUser ? ['webecho'] : [])];
    for (const name of names) {
      const secret = totpSecret();
      const add = await c.admin(['users', 'add', name, '--logins', LOCAL_USER, '--roles', 'access', '--format', 'json']);
      assert.equal(add.code, 0, add.stderr);
      const url = (JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${c.serve.web}`);
      await awaitTotpRoom();
      const signup = await runPostern(['signup', url, '--password-stdin', '--totp-secret', secret, '--otp', oathtoolCode(secret, -1), '--ca-pin', c.serve.caPin], { input: `${TEST_PASSWORD}\n` });
      assert.equal(signup.code, 0, signup.stderr);
      loginUsers.push({ name, secret });
    }

    const webUser = opts.webUser ? loginUsers.pop() : undefined;
    return {
      cluster: c, cli: opts.cli, user, home, login: LOCAL_USER, nodes, jump, servePid: c.serve.proc.pid!,
      sshConfig, proxyCommandConfig, posternEnv, sshEnv: posternEnv, loginUsers, ...(webUser ? { webUser } : {}),
      async stop() {
        for (const s of stops.reverse()) await s().catch(() => {});
        await c.stop();
        for (const dir of [c.work, c.serve.dataDir, jump.dir]) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => {});
    await c.stop().catch(() => {});
    throw err;
  }
}
