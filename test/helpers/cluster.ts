/**
 * A whole test cluster from the outside, the way an admin and an engineer build it: a real
 * `postern serve`, users signed up with oathtool codes and logged in, and real sshd nodes
 * registered with `postern nodes add` (host certificates) trusting the user CA.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPostern, POSTERN_BIN } from './cli.ts';
import type { CliResult, OnTty } from './cli.ts';
import { startServe } from './serve.ts';
import type { ServeProcess } from './serve.ts';
import { startAgent, startSshd, oathtoolCodeForStep } from './openssh.ts';
import { withFreshPort } from './net.ts';
import { waitFor } from './wait.ts';
import type { Sshd } from './openssh.ts';

/** The password every test user gets. */
export const TEST_PASSWORD = 'correct horse battery staple';

/** A cluster under test and what it made. */
export class TestCluster {
  readonly work = mkdtempSync(join(tmpdir(), 'postern-it-'));
  serve!: ServeProcess;
  readonly nodes = new Map<string, Sshd & { dir: string; hostKey: string }>();
  private readonly cleanup: Array<() => Promise<unknown>> = [];
  /** The TOTP step each user's last code belonged to: a code works once. */
  private readonly usedStep = new Map<string, number>();

  /** The TOTP step of the last code `freshCode` gave for `user`. */
  stepUsed(user: string): number {
    return this.usedStep.get(user) ?? -Infinity;
  }

  /** Says `user` was just invited: no code of theirs was used, so freshCode may start at the earliest step auth accepts. */
  newUser(user: string): void {
    this.usedStep.set(user, -Infinity);
  }

  /**
   * A TOTP code for `user` of a step not used yet (auth takes each step once, and one step
   * either side of now): the earliest such step, so later codes are left for later logins
   * without waiting. The previous step only with 10 s of it left to use, so it cannot go
   * stale on the way; when every acceptable step is used, waits for the next one.
   */
  async freshCode(user: string, secret: string): Promise<string> {
    // Of a user this cluster did not see start, this step's code may be used already (a test's own oathtoolCode(secret, 0)).
    const last = this.usedStep.get(user) ?? Math.floor(Date.now() / 30_000);
    const step = await waitFor(() => {
      const now = Date.now();
      const current = Math.floor(now / 30_000);
      const candidates = [...(30_000 - (now % 30_000) > 10_000 ? [current - 1] : []), current, current + 1];
      return candidates.find((s) => s > last);
    }, { what: `a TOTP step of ${user} not used yet`, timeoutMs: 35_000, intervalMs: 250 });
    this.usedStep.set(user, step);
    return oathtoolCodeForStep(secret, step);
  }

  /** Starts serve (extra YAML for `cluster:` settings, and extra serve flags, may be given). */
  async start(clusterYaml?: string, extraArgs: string[] = []): Promise<this> {
    const args = ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example', ...extraArgs];
    if (clusterYaml) {
      const cfg = join(this.work, 'postern.yaml');
      writeFileSync(cfg, `cluster:\n${clusterYaml.replace(/^/gm, '  ')}\n`);
      args.push('--config', cfg);
    }
    this.serve = await startServe({ args });
    return this;
  }

  /** The proxy's SSH port. */
  get sshPort(): number {
    return Number(/ssh=[^ ]*:(\d+)/.exec(this.serve.ready)?.[1]);
  }

  /** Runs an admin command against this cluster's data dir. */
  admin(args: string[]): Promise<CliResult> {
    return runPostern([...args, '--data-dir', this.serve.dataDir]);
  }

  /** Adds a user, signs them up with `secret`, logs them in into their own TSH_HOME; returns it. */
  async user(name: string, logins: string, secret: string, roles = 'access', extraEnv: Record<string, string> = {}): Promise<string> {
    const add = await this.admin(['users', 'add', name, '--logins', logins, '--roles', roles, '--format', 'json']);
    assert.equal(add.code, 0, add.stderr);
    const url = (JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${this.serve.web}`);
    // Sign up and log in with the earliest steps auth accepts, each once (freshCode).
    this.newUser(name);
    const signup = await runPostern(['signup', url, '--password-stdin', '--totp-secret', secret, '--otp', await this.freshCode(name, secret), '--ca-pin', this.serve.caPin], { input: TEST_PASSWORD + '\n' });
    assert.equal(signup.code, 0, signup.stderr);
    const home = join(this.work, `home-${name}`);
    const login = await runPostern(['login', '--proxy', this.serve.web, '--user', name, '--password-stdin', '--otp', await this.freshCode(name, secret), '--ca-pin', this.serve.caPin, '--add-keys-to-agent', 'no'],
      { env: { TSH_HOME: home, ...extraEnv }, input: TEST_PASSWORD + '\n' });
    assert.equal(login.code, 0, login.stderr);
    return home;
  }

  /**
   * Registers a node with `nodes add` and starts a real sshd with the host certificate
   * (`sshdConfig`: more lines for its sshd_config).
   */
  async node(name: string, labels: string, opts: { start?: boolean; sshdConfig?: string[] } = {}): Promise<Sshd & { dir: string; hostKey: string }> {
    const dir = join(this.work, `node-${name}`);
    mkdirSync(dir, { recursive: true });
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    // The address is registered before sshd starts (sshd needs the host certificate that
    // `nodes add` writes), so sshd cannot take port 0: when the port was taken meanwhile,
    // unregister and try another.
    const sshd = await withFreshPort(async (port): Promise<Sshd> => {
      const add = await this.admin(['nodes', 'add', '--name', name, '--addr', `127.0.0.1:${port}`, '--labels', labels, '--host-key-file', `${hostKey}.pub`, '--out', dir]);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      if (opts.start === false) return { port, dir, hostKeyPub: '', log: () => '', stop: async () => {} };
      try {
        return await startSshd({
          trustedUserCaKeys: readFileSync(join(dir, 'user_ca.pub'), 'utf8'),
          hostKey: { privatePath: hostKey, certPath: join(dir, `${name}-cert.pub`) },
          port,
          ...(opts.sshdConfig ? { extra: opts.sshdConfig } : {}),
        });
      } catch (err) {
        if ((err as { code?: string }).code === 'EADDRINUSE') {
          const rm = await this.admin(['nodes', 'rm', name]);
          assert.equal(rm.code, 0, rm.stderr);
        }
        throw err;
      }
    });
    if (opts.start !== false) this.cleanup.push(() => sshd.stop());
    const node = { ...sshd, dir, hostKey };
    this.nodes.set(name, node);
    return node;
  }

  /** Starts an ssh-agent that stops with the cluster; returns its socket. */
  async agent(): Promise<string> {
    const agent = await startAgent();
    this.onStop(() => agent.stop());
    return agent.socket;
  }

  /** Registers something to stop at the end. */
  onStop(fn: () => Promise<unknown>): void {
    this.cleanup.push(fn);
  }

  /** Stops everything. */
  async stop(): Promise<void> {
    for (const c of this.cleanup.reverse()) await c().catch(() => {});
    await this.serve?.stop();
  }
}

/** Paths of a logged-in user's key, certificate and known_hosts under a TSH_HOME. */
export function userFiles(home: string, user: string): { key: string; cert: string; knownHosts: string } {
  const dir = join(home, 'keys', '127.0.0.1');
  return { key: join(dir, user), cert: join(dir, `${user}-ssh`, 'test.example-cert.pub'), knownHosts: join(dir, 'known_hosts') };
}

/**
 * Writes to `path` an ssh_config for every host that logs in with `user`'s key and
 * certificate from `home` and checks host certificates strictly, with `extra` lines after.
 */
export function userSshConfig(path: string, home: string, user: string, extra: string[] = []): string {
  const f = userFiles(home, user);
  writeFileSync(path, [
    'Host *',
    `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 30',
    ...extra, '',
  ].join('\n'));
  return path;
}

/** The ssh_config line that reaches nodes through `postern proxy ssh` as the user logged in at `home` (`env`: more variables for it). */
export function proxyCommandLine(home: string, env = ''): string {
  return `  ProxyCommand env TSH_HOME=${home} POSTERN_FROM_SOURCE=1 ${env ? `${env} ` : ''}${process.execPath} ${POSTERN_BIN} proxy ssh %r@%h:%p`;
}

/**
 * Writes to `path` an ssh_config that logs in with `user`'s key and certificate from `home`
 * (no agent), checks host certificates strictly, and reaches nodes through
 * `postern proxy ssh` over `transport`.
 */
export function proxySshConfig(path: string, home: string, user: string, transport: string): string {
  return userSshConfig(path, home, user, ['  IdentityAgent none', proxyCommandLine(home, `POSTERN_PROXY_TRANSPORT=${transport}`)]);
}

/** Puts `user`'s key and certificate from `home` in the ssh-agent at `sock`, as `postern login` does (for `ssh -A` to forward). */
export function addToAgent(cluster: TestCluster, home: string, user: string, sock: string): void {
  const f = userFiles(home, user);
  const k = join(cluster.work, `${user}_id_${randomInt(1e9)}`);
  copyFileSync(f.key, k);
  copyFileSync(f.cert, `${k}-cert.pub`);
  execFileSync('ssh-add', [k], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
}

/**
 * Answers, on the terminal `tty`, the prompts of `postern` logging `user` in again: yes to
 * logging in, the password, a code of a step not used yet (`delayMs` after each prompt).
 * Returns which were answered so far: 'confirm', 'password', 'otp'.
 */
export function answerLogin(tty: OnTty, cluster: TestCluster, user: string, secret: string, delayMs = 0): Set<string> {
  const answered = new Set<string>();
  const answer = (prompt: RegExp, key: string, text: () => Promise<string>): void => {
    if (answered.has(key) || !prompt.test(tty.out())) return;
    answered.add(key);
    void (async () => {
      const reply = await text();
      if (delayMs > 0) setTimeout(() => tty.proc.stdin.write(reply), delayMs);
      else tty.proc.stdin.write(reply);
    })();
  };
  const onOutput = (): void => {
    answer(/Log in again now\?/, 'confirm', async () => 'y\r');
    answer(new RegExp(`Password for ${user}`), 'password', async () => TEST_PASSWORD + '\r');
    answer(/Code from your authenticator app/, 'otp', async () => (await cluster.freshCode(user, secret)) + '\r');
  };
  tty.proc.stdout.on('data', onOutput);
  tty.proc.stderr.on('data', onOutput);
  return answered;
}
