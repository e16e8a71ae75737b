/**
 * Serving the web UI: the files Vite built from web/ into dist/web. `/` goes to `/web/`;
 * any path under `/web/` that is not a file gets index.html (the UI routes in the page);
 * index.html is never cached, hashed assets for a year. Every page carries a strict
 * Content-Security-Policy: only this origin's scripts, styles, images and connections.
 * Without a built UI, a page says how to build it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The Content-Security-Policy of the UI's pages. */
export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2', '.map': 'application/json',
};

/** Finds dist/web: $POSTERN_WEB_DIR, else the nearest dist/web/index.html above this module (sources or bundle). */
export function findWebDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.POSTERN_WEB_DIR) return env.POSTERN_WEB_DIR;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'dist', 'web');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** Registers `/`, `/web/*`. */
export function registerUi(app: FastifyInstance, webDir: string | undefined): void {
  app.get('/', async (_req, reply) => reply.redirect('/web/'));
  app.get('/web', async (_req, reply) => reply.redirect('/web/'));
  app.get('/web/*', async (req, reply) => {
    void reply.header('content-security-policy', UI_CSP).header('x-frame-options', 'DENY');
    if (!webDir) {
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(
        '<!doctype html><meta charset="utf-8"><title>Postern</title>'
        + '<p>The web UI is not built. Build it with <code>npm run build</code> (it writes dist/web), then reload.</p>'
        + '<p>Meanwhile, to accept an invite: <code>postern signup &lt;this page\'s address&gt;</code></p>',
      );
    }
    const rel = decodeURIComponent((req.params as { '*': string })['*'] ?? '');
    const root = resolve(webDir);
    const file = normalize(join(root, rel));
    const inside = file.startsWith(root + sep);
    if (inside && rel !== '' && existsSync(file) && !file.endsWith(sep)) {
      const immutable = rel.startsWith('assets/');
      return reply.type(TYPES[extname(file)] ?? 'application/octet-stream')
        .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .send(readFileSync(file));
    }
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(readFileSync(join(root, 'index.html')));
  });
}
