/**
 * Builds the web UI (web/, Vite + Preact) into dist/web, which the proxy serves. Run alone
 * (`node scripts/build-web.ts`), from scripts/build.ts, or through ensureWebBuilt(), which
 * builds only when dist/web is missing or older than a file under web/.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds dist/web now. */
export async function buildWeb(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
}

/** Builds dist/web when it is missing or stale; returns whether it built. */
export async function ensureWebBuilt(): Promise<boolean> {
  const index = join(root, 'dist', 'web', 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newest(join(root, 'web'))) return false;
  await buildWeb();
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await buildWeb();
  console.log('built dist/web');
}
