/**
 * The high-availability numbers (docs/benchmarks.md, "High availability"): logins per second
 * with 1 and with 2 auth servers on one PostgreSQL against 1 on SQLite; `postern ls` (auth's
 * listNodes) latency with 10,000 registered nodes; an audit query over 1,000,000 events. It
 * starts its own PostgreSQL (test/helpers/postgres.ts, loopback, a temp dir) and stops it;
 * every phase is bounded. Auth servers run in this process (AuthServer with its own store
 * and pool each), called through the same AuthClient a proxy uses, so the numbers are auth
 * and storage, not the network or process start. Run: npm run bench:ha
 *
 *   BENCH_HA_LOGIN_S=9       seconds of logins per setup, in 3 interleaved rounds     BENCH_HA_CONCURRENCY=8   logins in flight
 *   BENCH_HA_NODES=10000     registered nodes for ls         BENCH_HA_EVENTS=1000000 audit events
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AuthServer, localAuthClient } from '../src/auth/auth-server.ts';
import type { AuthClient } from '../src/api/auth-client.ts';
import type { Backend } from '../src/storage/backend.ts';
import { openSqliteBackend } from '../src/storage/sqlite.ts';
import { openPostgresBackend } from '../src/storage/postgres.ts';
import { generateKeyPair, formatAuthorizedKey } from '../src/ssh/keys.ts';
import { systemClock } from '../src/core/clock.ts';
import { hashPassword, verifyPassword } from '../src/auth/passwords.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const num = (k: string, d: number): number => (process.env[k] ? Number(process.env[k]) : d);
const LOGIN_S = num('BENCH_HA_LOGIN_S', 9);
const CONCURRENCY = num('BENCH_HA_CONCURRENCY', 8);
const NODES = num('BENCH_HA_NODES', 10_000);
const EVENTS = num('BENCH_HA_EVENTS', 1_000_000);
const PASSWORD = 'correct horse battery staple';
const USERS = 16;
const ROUNDS = 3;

const cleanups: Array<() => Promise<unknown>> = [];
const log = (s: string): void => { process.stderr.write(`${s}\n`); };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const ms = (n: number): string => `${n.toFixed(n < 10 ? 1 : 0)} ms`;

interface Auth { server: AuthServer; admin: AuthClient; proxy: AuthClient; backend: Backend }

async function openAuth(backend: Backend): Promise<Auth> {
  const server = await AuthServer.open({ backend, clock: systemClock, clusterName: 'bench.example' });
  return { server, backend, admin: localAuthClient(server, { role: 'admin', name: 'bench' }), proxy: localAuthClient(server, { role: 'proxy', name: 'bench-proxy' }) };
}

/** Users with passwords, second factor off: a login is the password check, the signing and the writes. */
async function seedUsers(a: Auth): Promise<void> {
  await a.admin.updateSettings({ second_factor: 'off' });
  for (let i = 0; i < USERS; i++) {
    const inv = await a.admin.createUser({ name: `u${i}`, logins: ['bench'], roles: ['access'], inviteTtlMs: 3_600_000 });
    await a.proxy.acceptInvite({ token: inv.inviteUrl.replace(/^.*\/invite\//, ''), password: PASSWORD, clientAddr: '127.0.0.1' });
  }
}

/** Logins for `seconds`, CONCURRENCY at once, round-robin over `auths`. */
async function loginRound(auths: Auth[], seconds: number, key: string): Promise<{ n: number; s: number; times: number[] }> {
  const times: number[] = [];
  const end = Date.now() + seconds * 1000;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const n = i++;
      const t0 = performance.now();
      await auths[n % auths.length].proxy.loginSsh({ user: `u${n % USERS}`, password: PASSWORD, publicKey: key, clientAddr: `10.0.${(n >> 8) & 255}.${n & 255}` });
      times.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { n: times.length, s: (performance.now() - t0) / 1000, times };
}

/** Password checks alone (scrypt at the default cost), as many at once as the logins: where a login's time goes. */
async function scryptRound(stored: string, seconds: number): Promise<{ n: number; s: number; times: number[] }> {
  let n = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < end) { await verifyPassword(PASSWORD, stored); n++; }
  }));
  return { n, s: (performance.now() - t0) / 1000, times: [] };
}

/**
 * The four setups in interleaved rounds (the machine's load drifts; each setup sees the
 * same drift), ROUNDS of LOGIN_S / ROUNDS seconds each; per setup the total rate and p50.
 */
async function loginRates(setups: Array<() => Promise<{ n: number; s: number; times: number[] }>>): Promise<Array<{ perSecond: number; p50: number; n: number }>> {
  const acc = setups.map(() => ({ n: 0, s: 0, times: [] as number[] }));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, run] of setups.entries()) {
      const x = await run();
      acc[k].n += x.n;
      acc[k].s += x.s;
      acc[k].times.push(...x.times);
    }
  }
  return acc.map((a) => ({ perSecond: a.n / a.s, p50: median(a.times), n: a.n }));
}

/** NODES nodes, 1% with env=prod, written in batches (one real `nodes add` gives the record's shape). */
async function seedNodes(a: Auth): Promise<void> {
  await a.admin.addNode({ name: 'n0', addr: '10.0.0.1:22', labels: { env: 'prod' }, hostPublicKey: formatAuthorizedKey(generateKeyPair().publicWire) });
  const shape = JSON.parse((await a.backend.get('nodes/n0'))!.value) as Record<string, unknown>;
  for (let start = 1; start < NODES; start += 1000) {
    const ops = [];
    for (let n = start; n < Math.min(start + 1000, NODES); n++) {
      ops.push({ kind: 'put' as const, key: `nodes/n${n}`, value: JSON.stringify({ ...shape, name: `n${n}`, addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:22`, labels: { env: n % 100 === 0 ? 'prod' : 'dev', team: `t${n % 7}` } }) });
    }
    await a.backend.atomic(ops);
  }
}

async function lsLatency(a: Auth): Promise<{ all: number; selector: number; count: number }> {
  await a.admin.createUser({ name: 'root1', logins: ['bench'], roles: ['admin'], inviteTtlMs: 3_600_000 });
  const all: number[] = [];
  const sel: number[] = [];
  let count = 0;
  for (let r = 0; r < 15; r++) {
    let t0 = performance.now();
    count = (await a.proxy.listNodes({ user: 'root1' })).length;
    all.push(performance.now() - t0);
    t0 = performance.now();
    await a.proxy.listNodes({ user: 'root1', labels: { env: 'prod' } });
    sel.push(performance.now() - t0);
  }
  return { all: median(all.slice(1)), selector: median(sel.slice(1)), count };
}

function auditValue(n: number, t: number): string {
  return JSON.stringify({ type: n % 10 === 0 ? 'user.login' : 'session.start', user: `user${n % 500}`, addr: '10.0.0.1', success: true, node: `n${n % 1000}`, time: new Date(t).toISOString() });
}

/** EVENTS audit events over the last 30 days: SQLite through one transaction per 20,000; PostgreSQL by one INSERT … SELECT. */
async function seedAudit(a: Auth, pgUrl?: string): Promise<void> {
  const now = Date.now();
  const span = 30 * 86_400_000;
  const at = (n: number): number => now - span + Math.floor((n * span) / EVENTS);
  if (pgUrl) {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`
      INSERT INTO postern_items (key, value, revision)
      SELECT 'audit/' || lpad(((($1::bigint - $2::bigint) + (n * $2::bigint / $3::bigint)))::text, 15, '0') || '-' || lpad(to_hex(n), 8, '0'),
             json_build_object('type', CASE WHEN n % 10 = 0 THEN 'user.login' ELSE 'session.start' END, 'user', 'user' || (n % 500), 'addr', '10.0.0.1',
               'success', true, 'node', 'n' || (n % 1000), 'time', to_char(to_timestamp((($1::bigint - $2::bigint) + (n * $2::bigint / $3::bigint)) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text,
             nextval('postern_revision')
      FROM generate_series(0, $3::bigint - 1) AS n`, [now, span, EVENTS]);
    await c.query('ANALYZE postern_items');
    await c.end();
    return;
  }
  for (let start = 0; start < EVENTS; start += 20_000) {
    const ops = [];
    for (let n = start; n < Math.min(start + 20_000, EVENTS); n++) {
      ops.push({ kind: 'put' as const, key: `audit/${String(at(n)).padStart(15, '0')}-${n.toString(16).padStart(8, '0')}`, value: auditValue(n, at(n)) });
    }
    await a.backend.atomic(ops);
  }
}

/** The audit page's query (the newest 500 of the last 30 days) and a narrow one (one user's logins, newest 50). */
async function auditLatency(a: Auth): Promise<{ page: number; narrow: number; pageCount: number }> {
  const page: number[] = [];
  const narrow: number[] = [];
  let pageCount = 0;
  const since = new Date(Date.now() - 31 * 86_400_000).toISOString();
  for (let r = 0; r < 6; r++) {
    let t0 = performance.now();
    pageCount = (await a.admin.searchAudit({ since, limit: 500 })).length;
    page.push(performance.now() - t0);
    t0 = performance.now();
    await a.admin.searchAudit({ since, user: 'user7', type: 'user.login', limit: 50 });
    narrow.push(performance.now() - t0);
  }
  return { page: median(page.slice(1)), narrow: median(narrow.slice(1)), pageCount };
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => { log('bench:ha: over its 20-minute limit, stopping'); process.exit(2); }, 20 * 60_000);
  deadline.unref();
  const server = await startPostgres({ after: (fn) => cleanups.push(async () => fn()) });
  const rows: string[] = [];

  // Logins: SQLite, PostgreSQL with one auth server, PostgreSQL with two on one database.
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-ha-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const sqlite = await openAuth(await openSqliteBackend({ dataDir: dir }));
  cleanups.push(() => sqlite.backend.close());
  await seedUsers(sqlite);
  const pgUrl = await server.createDatabase();
  const pg1 = await openAuth(await openPostgresBackend({ url: pgUrl }));
  const pg2 = await openAuth(await openPostgresBackend({ url: pgUrl }));
  cleanups.push(() => pg1.backend.close(), () => pg2.backend.close());
  await seedUsers(pg1);
  log('logins…');
  const key = formatAuthorizedKey(generateKeyPair().publicWire);
  const stored = await hashPassword(PASSWORD);
  const slice = LOGIN_S / ROUNDS;
  const [lS, l1, l2, sc] = await loginRates([
    () => loginRound([sqlite], slice, key), () => loginRound([pg1], slice, key), () => loginRound([pg1, pg2], slice, key), () => scryptRound(stored, slice),
  ]);
  rows.push(`| logins/s, 1 auth on SQLite | ${lS.perSecond.toFixed(1)} (p50 ${ms(lS.p50)}, n=${lS.n}) | 1.00 |`);
  rows.push(`| logins/s, 1 auth on PostgreSQL | ${l1.perSecond.toFixed(1)} (p50 ${ms(l1.p50)}, n=${l1.n}) | ${(l1.perSecond / lS.perSecond).toFixed(2)} × SQLite |`);
  rows.push(`| logins/s, 2 auth on one PostgreSQL | ${l2.perSecond.toFixed(1)} (p50 ${ms(l2.p50)}, n=${l2.n}) | ${(l2.perSecond / l1.perSecond).toFixed(2)} × 1 auth |`);
  rows.push(`| password checks/s alone (scrypt N=2^15, no login) | ${sc.perSecond.toFixed(1)} | logins on SQLite reach ${((lS.perSecond / sc.perSecond) * 100).toFixed(0)} % of it |`);

  // ls with NODES nodes, and the audit query over EVENTS events, on both stores.
  const base: { ls?: number; audit?: number } = {};
  for (const [name, a, url] of [['SQLite', sqlite, undefined], ['PostgreSQL', pg1, pgUrl]] as const) {
    log(`${name}: ${NODES} nodes…`);
    await seedNodes(a);
    const l = await lsLatency(a);
    const lsRatio = base.ls === undefined ? '1.00' : `${(l.all / base.ls).toFixed(2)} × SQLite`;
    base.ls ??= l.all;
    rows.push(`| ls, ${l.count} nodes, ${name}: all / env=prod | ${ms(l.all)} / ${ms(l.selector)} | ${lsRatio} |`);
    log(`${name}: ${EVENTS} audit events…`);
    const t0 = performance.now();
    await seedAudit(a, url);
    const seeded = performance.now() - t0;
    const q = await auditLatency(a);
    const auditRatio = base.audit === undefined ? '1.00' : `${(q.page / base.audit).toFixed(2)} × SQLite`;
    base.audit ??= q.page;
    rows.push(`| audit over ${EVENTS} events, ${name}: newest 500 / one user's 50 newest logins | ${ms(q.page)} / ${ms(q.narrow)} (seeded in ${(seeded / 1000).toFixed(1)} s) | ${auditRatio} |`);
  }
  process.stdout.write(['', `### High availability (${new Date().toISOString().slice(0, 10)}, ${CONCURRENCY} logins in flight, ${LOGIN_S} s each)`, '', '| what | measured | ratio |', '|---|---|---|', ...rows, ''].join('\n') + '\n');
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
