/**
 * What every interop file shares: one cluster per file (default mode or recording proxy
 * mode), alice logged in with her key and certificate in an ssh-agent, one real sshd node
 * `web1` with a bare git repository, a few-MiB file with its sha256, an echo server for the
 * port forwards, and ways to run the clients (never a shell, always with a deadline) and
 * to read the audit log. Each client is a real program from Debian (scripts/ensure-system-deps.ts).
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { POSTERN_BIN } from '../helpers/cli.ts';
import { LOCAL_USER, startAgent, startSshd } from '../helpers/openssh.ts';
import { boundPort, withFreshPort } from '../helpers/net.ts';

export { LOCAL_USER };

/**
 * A port that was free a moment ago, for what `ssh` must be told before it runs (-L, -R,
 * -D). ssh runs with ExitOnForwardFailure=yes, so a port taken meanwhile fails loudly.
 */
export function freePort(): Promise<number> {
  return withFreshPort(async (p) => p);
}

/** The two ways the proxy carries a node connection. */
export type Mode = 'default' | 'recording';

/** What a client run gives back. */
export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Debian's Python, which has python3-paramiko and python3-asyncssh (not a pyenv one first on PATH). */
export const PYTHON = '/usr/bin/python3';

/** The size of the transferred file: a few MiB, enough for many SSH windows. */
const FILE_BYTES = 3 * 1024 * 1024;

/** A file's sha256 in hex. */
export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Runs a program with a deadline; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
    proc.stdin.on('error', () => {});
    proc.stdin.end(opts.input ?? '');
  });
}

/** Waits until `check()` is true, polling, with a deadline. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One audit event as `postern audit --format json` prints it. */
export interface AuditEvent {
  type: string;
  user: string;
  success: boolean;
  node?: string;
  login?: string;
  command?: string;
  direction?: string;
  port?: number;
  via?: string;
}

/** The shared set-up of one interop file. */
export class Interop {
  readonly c = new TestCluster();
  readonly mode: Mode;
  alice = '';
  agentSock = '';
  /** alice's key and certificate, copied where OpenSSH finds the certificate next to the key. */
  key = '';
  cert = '';
  knownHosts = '';
  /** An OpenSSH client config: alice's key, strict host keys, the agent forwarded in recording mode. */
  sshConfig = '';
  /** The file to transfer and its sha256. */
  file = '';
  fileSum = '';
  /** A bare git repository on the node with one commit, and that commit's file's text. */
  gitRepo = '';
  readonly gitText = `interop ${randomBytes(6).toString('hex')}\n`;
  echoPort = 0;
  private echo: Server | undefined;

  /** The node's sftp subsystem line (sshd_config `Subsystem sftp ...`). */
  private readonly sftp: string;

  constructor(mode: Mode, opts: { sftpSubsystem?: string } = {}) {
    this.mode = mode;
    this.sftp = opts.sftpSubsystem ?? 'internal-sftp';
  }

  /** Starts the cluster, the agent, the node, the data, the echo server. */
  async start(): Promise<this> {
    const c = this.c;
    await c.start(this.mode === 'recording' ? 'session_recording: proxy' : undefined);
    const agent = await startAgent();
    c.onStop(() => agent.stop());
    this.agentSock = agent.socket;
    this.alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    const f = userFiles(this.alice, 'alice');
    this.key = join(c.work, 'alice_id');
    this.cert = `${this.key}-cert.pub`;
    this.knownHosts = f.knownHosts;
    copyFileSync(f.key, this.key);
    copyFileSync(`${f.key}.pub`, `${this.key}.pub`);
    copyFileSync(f.cert, this.cert);
    execFileSync('ssh-add', [this.key], { env: this.env(), stdio: 'pipe' });
    // The node is started here rather than by c.node(): it needs an SFTP server (scp -s, sftp).
    const node = await c.node('web1', 'env=interop', { start: false });
    const sshd = await startSshd({
      trustedUserCaKeys: readFileSync(join(node.dir, 'user_ca.pub'), 'utf8'),
      hostKey: { privatePath: node.hostKey, certPath: join(node.dir, 'web1-cert.pub') },
      port: node.port, extra: [`Subsystem sftp ${this.sftp}`],
    });
    c.onStop(() => sshd.stop());
    this.sshConfig = join(c.work, 'ssh_config');
    writeFileSync(this.sshConfig, [
      'Host *',
      `  IdentityFile ${this.key}`, `  CertificateFile ${this.cert}`, '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${this.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 30',
      ...(this.mode === 'recording' ? ['  ForwardAgent yes'] : []),
      'Host *.test.example',
      `  ProxyCommand ${this.proxyCommand('%r')}`,
      '',
    ].join('\n'));
    this.file = join(c.work, 'payload.bin');
    writeFileSync(this.file, randomBytes(FILE_BYTES));
    this.fileSum = sha256(this.file);
    this.gitRepo = join(c.work, 'repo.git');
    const seed = join(c.work, 'repo-seed');
    mkdirSync(seed);
    const git = (args: string[], cwd: string): void => { execFileSync('git', args, { cwd, stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }); };
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', this.gitRepo]);
    git(['init', '-q', '-b', 'main'], seed);
    writeFileSync(join(seed, 'README'), this.gitText);
    git(['add', 'README'], seed);
    git(['commit', '-q', '-m', 'seed'], seed);
    git(['push', '-q', this.gitRepo, 'main'], seed);
    this.echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => this.echo!.listen(0, '127.0.0.1', () => r()));
    this.echoPort = boundPort(this.echo);
    return this;
  }

  async stop(): Promise<void> {
    this.echo?.close();
    await this.c.stop();
  }

  /** The ProxyCommand line, `login` being the node login (`%r` for OpenSSH). */
  proxyCommand(login: string, host = '%h', port = '%p'): string {
    return `env TSH_HOME=${this.alice} POSTERN_FROM_SOURCE=1 ${process.execPath} ${POSTERN_BIN} proxy ssh ${login}@${host}:${port}`;
  }

  /** The environment of a client: alice's agent. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...process.env, SSH_AUTH_SOCK: this.agentSock, ...extra };
  }

  /** `ssh -F config` with these arguments. */
  ssh(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return run('ssh', ['-F', this.sshConfig, ...args], { env: opts.env ?? this.env(), ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  /** The node through the ProxyCommand, and through the listener with -J. */
  get viaProxyCommand(): string { return `${LOCAL_USER}@web1.test.example`; }
  get jump(): string[] { return ['-J', `alice@127.0.0.1:${this.c.sshPort}`]; }

  /** Alice's audit events (newest first). */
  async audit(type?: string): Promise<AuditEvent[]> {
    const r = await this.c.admin(['audit', '--user', 'alice', '--format', 'json', ...(type ? ['--type', type] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as AuditEvent[];
  }

  /** How many node events the tests so far expect in alice's audit log. */
  private expected = 0;

  /**
   * Asserts that alice's audit log holds `n` more node events than the tests before
   * expected: `session.proxy` in default mode, `session.start`/`session.exec` (a subsystem is
   * `session.exec`) in recording mode, each a success on web1 (-J's carries no login).
   */
  async expectNodeEvents(n = 1): Promise<void> {
    this.expected += n;
    const types = this.mode === 'recording' ? ['session.start', 'session.exec'] : ['session.proxy'];
    let got = 0;
    await until(async () => {
      got = (await this.audit()).filter((e) => types.includes(e.type) && e.success && e.node === 'web1' && (e.login ?? LOCAL_USER) === LOCAL_USER).length;
      return got >= this.expected;
    }, `${this.expected} ${types.join('/')} audit events on web1 (got ${got})`, 15_000);
    this.expected = got;
  }

  /** The serve log's tail, to explain a failure. */
  tail(): string {
    return this.c.serve.stderr().slice(-3000);
  }
}

/** Sends `text` to 127.0.0.1:port and resolves with the first reply. */
export function echoThrough(port: number, text: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(text));
    sock.on('data', (d) => { resolve(d.toString()); sock.end(); });
    sock.on('error', reject);
    setTimeout(() => { sock.destroy(); reject(new Error(`no reply through port ${port}`)); }, 20_000).unref();
  });
}

/** A SOCKS5 CONNECT to 127.0.0.1:destPort through the proxy at socksPort; resolves with the echo. */
export function socksEcho(socksPort: number, destPort: number, text: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = connect(socksPort, '127.0.0.1');
    let stage = 0;
    let buf = Buffer.alloc(0);
    sock.on('connect', () => sock.write(Buffer.from([5, 1, 0])));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[0] !== 5 || buf[1] !== 0) return reject(new Error('socks: no method accepted'));
        buf = buf.subarray(2);
        stage = 1;
        const req = Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, destPort >> 8, destPort & 255]);
        sock.write(req);
      }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0) return reject(new Error(`socks: connect refused (${buf[1]})`));
        buf = buf.subarray(10);
        stage = 2;
        sock.write(text);
      }
      if (stage === 2 && buf.length > 0) { resolve(buf.toString()); sock.end(); }
    });
    sock.on('error', reject);
    setTimeout(() => { sock.destroy(); reject(new Error('no reply through the SOCKS proxy')); }, 20_000).unref();
  });
}
