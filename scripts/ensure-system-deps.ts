/**
 * Installs what the tests need from Debian when it is missing: OpenSSH's server and client,
 * oathtool, script(1), asciinema and Chromium. Runs as `pretest`; needs root (or sudo) only when
 * something is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';

/**
 * sshd run as root refuses to start without its privilege separation directory, which
 * Debian's package makes only when a service manager starts sshd (never in a container).
 */
function ensurePrivsepDir(): void {
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
}

const needs: Array<{ pkg: string; path: string }> = [
  { pkg: 'openssh-server', path: '/usr/sbin/sshd' },
  { pkg: 'openssh-client', path: '/usr/bin/ssh' },
  { pkg: 'oathtool', path: '/usr/bin/oathtool' },
  // util-linux's script(1) gives a program a pseudo-terminal (client-proxy, recording-proxy and
  // sessions-join tests); Debian ships it in bsdutils.
  { pkg: 'bsdutils', path: '/usr/bin/script' },
  // `asciinema cat` reads what `postern play --format cast` writes (test/integration/recordings.test.ts).
  { pkg: 'asciinema', path: '/usr/bin/asciinema' },
  // The web UI's end-to-end tests drive Debian's Chromium with playwright-core (test/e2e).
  { pkg: 'chromium', path: '/usr/bin/chromium' },
  // The fonts Chromium draws the screenshots with.
  { pkg: 'fonts-dejavu-core', path: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf' },
  // The interop suite's clients (test/interop): PuTTY, Python's SSH libraries, gpg-agent, ssh-audit, rsync, git.
  { pkg: 'putty-tools', path: '/usr/bin/plink' },
  { pkg: 'python3-paramiko', path: '/usr/lib/python3/dist-packages/paramiko/__init__.py' },
  { pkg: 'python3-asyncssh', path: '/usr/lib/python3/dist-packages/asyncssh/__init__.py' },
  { pkg: 'gnupg', path: '/usr/bin/gpg' },
  { pkg: 'gpg-agent', path: '/usr/bin/gpg-agent' },
  { pkg: 'ssh-audit', path: '/usr/bin/ssh-audit' },
  { pkg: 'rsync', path: '/usr/bin/rsync' },
  { pkg: 'git', path: '/usr/bin/git' },
  // The PostgreSQL backend's tests start their own server from it (test/helpers/postgres.ts finds the version).
  { pkg: 'postgresql', path: '/usr/lib/postgresql' },
];
const missing = needs.filter((n) => !existsSync(n.path)).map((n) => n.pkg);
if (missing.length === 0) { ensurePrivsepDir(); process.exit(0); }

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = root ? [] : ['sudo', '-n'];
const run = (args: string[]): void => {
  const [cmd, ...rest] = [...sudo, ...args];
  const r = spawnSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) {
    console.error(`error: could not install ${missing.join(' ')} (${args.join(' ')} failed)`);
    console.error(`hint: install them yourself:  sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
};
console.error(`Installing from Debian: ${missing.join(' ')}`);
try { execFileSync('apt-get', ['--version'], { stdio: 'ignore' }); } catch {
  console.error(`error: ${missing.join(', ')} missing and apt-get is not available; install them with your package manager`);
  process.exit(1);
}
run(['apt-get', 'update', '-qq']);
run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
ensurePrivsepDir();
