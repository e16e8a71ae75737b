/**
 * Run after `npm install` (postinstall): makes sure ssh2's optional native crypto binding
 * is built for the Node that runs Postern (the node@24 devDependency, or the user's own
 * Node 24), not for whatever `node` npm found first while installing.
 *
 * Why: ssh2's own install script builds the binding with the first `node` on PATH and
 * npm's `nodedir`. On a machine whose system Node is older, the result "did not
 * self-register" under Node 24 and ssh2 silently fell back to its JavaScript ciphers:
 * 2-6x slower per byte (docs/benchmarks.md). It also has to be told the OpenSSL major
 * version Node bundles, or it takes the OpenSSL 1.1 Poly1305 path, which fails under
 * OpenSSL 3 ("invalid operation") and breaks chacha20-poly1305.
 *
 * The headers come from the `node` package's platform package when present (no network:
 * node-gyp would otherwise download them), else from the running Node's install prefix.
 * Failing to build is not fatal: ssh2 works without the binding, only slower; we say so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

/** Whether ssh2 loads its binding in this Node, and can use chacha20-poly1305 with it. */
function bindingWorks(cryptoDir: string): boolean {
  const probe = spawnSync(process.execPath, ['-e', `
    const b = require(${JSON.stringify(join(cryptoDir, 'build/Release/sshcrypto.node'))});
    const keys = Buffer.alloc(64, 1);
    const c = new b.ChaChaPolyCipher(keys);
    const pkt = Buffer.alloc(4 + 12 + 16);
    pkt.writeUInt32BE(12, 0);
    c.encrypt(pkt, 0);
  `], { encoding: 'utf8' });
  return probe.status === 0;
}

/** The folder with include/node for this Node's version, without downloading anything. */
function findNodeDir(): string | undefined {
  const candidates: string[] = [];
  for (const pkg of [`node-${process.platform}-${process.arch}`]) {
    try { candidates.push(dirname(require.resolve(`node/node_modules/${pkg}/package.json`))); } catch { /* not installed */ }
    try { candidates.push(dirname(require.resolve(`${pkg}/package.json`))); } catch { /* not installed */ }
  }
  candidates.push(resolve(dirname(process.execPath), '..'));
  return candidates.find((d) => existsSync(join(d, 'include/node/node_version.h')) && headerVersion(d) === process.versions.node);
}

function headerVersion(dir: string): string | undefined {
  const probe = spawnSync('sh', ['-c', `grep -E '^#define NODE_(MAJOR|MINOR|PATCH)_VERSION ' '${join(dir, 'include/node/node_version.h')}' | awk '{print $3}' | paste -sd.`], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

/** node-gyp as shipped with the npm that runs this script. */
function findNodeGyp(): string | undefined {
  const npmCli = process.env.npm_execpath;
  const candidates = [
    ...(npmCli ? [resolve(dirname(npmCli), '../node_modules/node-gyp/bin/node-gyp.js')] : []),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find((c) => existsSync(c));
}

function main(): void {
  let cryptoDir: string;
  try {
    cryptoDir = join(dirname(require.resolve('ssh2/package.json')), 'lib/protocol/crypto');
  } catch {
    return;
  }
  if (bindingWorks(cryptoDir)) {
    console.log(`ssh2 native crypto: loads in Node ${process.versions.node}`);
    return;
  }
  const nodeDir = findNodeDir();
  const gyp = findNodeGyp();
  if (!nodeDir || !gyp) {
    console.warn(`warning: ssh2's native crypto binding is not built for Node ${process.versions.node} (${!gyp ? 'node-gyp not found' : 'no Node headers found'}); SSH through the proxy works but is slower`);
    return;
  }
  const args = [gyp, 'rebuild', `--target=${process.versions.node}`, `--nodedir=${nodeDir}`, `--real_openssl_major=${/^\d+/.exec(process.versions.openssl)![0]}`];
  // npm passes its config (nodedir=/usr on some machines) as npm_config_* variables, which
  // node-gyp would prefer to the flags: leave them out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k)));
  const r = spawnSync(process.execPath, args, { cwd: cryptoDir, encoding: 'utf8', env });
  if (r.status === 0 && bindingWorks(cryptoDir)) {
    console.log(`ssh2 native crypto: built for Node ${process.versions.node}`);
  } else {
    console.warn(`warning: could not build ssh2's native crypto binding for Node ${process.versions.node}; SSH through the proxy works but is slower\n${(r.stderr ?? '').split('\n').slice(-8).join('\n')}`);
  }
}

main();
