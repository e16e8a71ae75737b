/** Bundles the CLI into dist/postern.mjs with esbuild: one file, loaded by bin/postern. */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist/postern.mjs', { force: true });
await build({
  entryPoints: ['src/cli/entry.ts'],
  outfile: 'dist/postern.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: 'linked',
  // ssh2's optional native parts are loaded with require() at run time; keep them outside.
  external: ['cpu-features', '*.node'],
  banner: { js: "import { createRequire as __pcr } from 'node:module'; const require = __pcr(import.meta.url);" },
  logLevel: 'warning',
});
console.log('built dist/postern.mjs');
