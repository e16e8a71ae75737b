/** Bundles the CLI into dist/postern.mjs (and lazily loaded chunks) with esbuild, and the web UI into dist/web with Vite. */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { postern: 'src/cli/entry.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  // Each command is its own chunk, loaded when that command runs.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: 'linked',
  // ssh2's optional native parts are loaded with require() at run time; keep them outside.
  external: ['cpu-features', '*.node'],
  plugins: [{
    // ssh2 requires its crypto binding by a path relative to its own file, which means
    // nothing inside dist/chunks: point it at the installed ssh2 package instead, or the
    // bundle silently falls back to JavaScript ciphers (scripts/build-native.ts).
    name: 'ssh2-native-binding',
    setup(b) {
      b.onResolve({ filter: /sshcrypto\.node$/ }, () => ({ path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', external: true }));
    },
  }],
  // CommonJS dependencies (ssh2) expect require, __filename and __dirname.
  banner: {
    js: [
      "import { createRequire as __pcr } from 'node:module';",
      "import { fileURLToPath as __pfu } from 'node:url';",
      "import { dirname as __pdn } from 'node:path';",
      'const require = __pcr(import.meta.url);',
      'const __filename = __pfu(import.meta.url);',
      'const __dirname = __pdn(__filename);',
    ].join(' '),
  },
  logLevel: 'warning',
});
console.log('built dist/postern.mjs');
const { buildWeb } = await import('./build-web.ts');
await buildWeb();
console.log('built dist/web');
