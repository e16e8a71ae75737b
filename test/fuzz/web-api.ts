/**
 * Fuzzing the web API's request bodies, queries and headers through the real web server
 * (buildWebServer, with a real auth on a temporary SQLite store, driven by fastify's inject:
 * no socket): whatever arrives, the answer is a 4xx or a 2xx with a JSON error body for
 * refusals, never a 5xx.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import { buildWebServer } from '../../src/proxy/web-server.ts';
import { SessionHub } from '../../src/proxy/session-hub.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';

interface WebUnderTest { app: FastifyInstance; close(): Promise<void> }

let web: Promise<WebUnderTest> | undefined;

async function start(): Promise<WebUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-web-'));
  const backend: Backend = await openSqliteBackend({ dataDir: dir });
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'fuzz.example', passwordCost: TEST_SCRYPT_LOG2N });
  const proxy = localAuthClient(auth, { role: 'proxy', name: 'fuzz' });
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const { certPem } = await proxy.signTlsCert({ publicKeyPem, hosts: ['localhost'] });
  const hub = new SessionHub({ auth: proxy, proxyName: 'fuzz', log: silentLogger });
  const app = buildWebServer({ auth: proxy, tls: { certPem, keyPem }, webPublicAddr: 'localhost:3080', sshPublicAddr: 'localhost:3023', sshHostKey: 'ssh-ed25519 AAAA', log: silentLogger, hub });
  await app.ready();
  return { app, async close() { await app.close(); await backend.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** The web server the properties use, made once. */
function webUnderTest(): Promise<WebUnderTest> {
  web ??= start();
  return web;
}

/** Closes the web server and its store, if one was made. */
export async function closeWebUnderTest(): Promise<void> {
  if (web) await (await web).close();
  web = undefined;
}

const ROUTES: Array<{ method: 'POST' | 'PUT' | 'GET' | 'DELETE'; url: string }> = [
  { method: 'POST', url: '/webapi/ssh/certs' },
  { method: 'POST', url: '/webapi/sessions/web' },
  { method: 'POST', url: '/webapi/invites/abcdefghijklmnopqrstuv' },
  { method: 'GET', url: '/webapi/invites/abcdefghijklmnopqrstuv' },
  { method: 'POST', url: '/webapi/account/password' },
  { method: 'POST', url: '/webapi/account/totp' },
  { method: 'PUT', url: '/webapi/account/totp' },
  { method: 'GET', url: '/webapi/nodes' },
  { method: 'GET', url: '/webapi/audit' },
  { method: 'GET', url: '/webapi/sessions/web' },
  { method: 'DELETE', url: '/webapi/sessions/web' },
];

const jsonValue = fc.oneof(
  fc.record({ user: fc.string({ maxLength: 80 }), password: fc.string({ maxLength: 40 }), otp: fc.string({ maxLength: 20 }), publicKey: fc.string({ maxLength: 100 }), ttlMs: fc.oneof(fc.integer(), fc.double(), fc.string()) }, { requiredKeys: [] }),
  fc.record({ currentPassword: fc.string({ maxLength: 40 }), newPassword: fc.string({ maxLength: 40 }), enrolId: fc.string({ maxLength: 30 }), otp: fc.string({ maxLength: 8 }), totpSecret: fc.string({ maxLength: 140 }) }, { requiredKeys: [] }),
  fc.anything({ maxDepth: 3 }),
);

/** The property: random bodies, queries, content types and headers on every body-taking route: never a 5xx. */
export async function fuzzWebApi(numRuns: number, seed?: number): Promise<void> {
  const { app } = await webUnderTest();
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...ROUTES), fc.oneof(jsonValue.map((v) => JSON.stringify(v) ?? 'null'), fc.string({ unit: 'binary', maxLength: 200 })),
    fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', ''),
    fc.string({ unit: fc.constantFrom(...'abc=,&%?;/\\0é\u0000[]'), maxLength: 40 }),
    fc.option(fc.string({ unit: 'binary', maxLength: 120 })),
    async (route, body, contentType, query, authorization) => {
      const res = await app.inject({
        method: route.method, url: `${route.url}?${query}`,
        headers: { ...(contentType ? { 'content-type': contentType } : {}), ...(authorization !== null ? { authorization } : {}), 'x-forwarded-for': '10.0.0.1' },
        ...(route.method === 'GET' ? {} : { payload: body }),
      });
      if (res.statusCode >= 500) throw new Error(`${route.method} ${route.url}?${query} (${contentType}) answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
    },
  ), { numRuns, seed });
}
