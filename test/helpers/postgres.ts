/**
 * A real PostgreSQL server for tests: Debian's `postgresql` (installed by
 * scripts/ensure-system-deps.ts), initialised with `initdb` in a temp dir, started with
 * `pg_ctl start -w` on a free loopback port, and stopped and removed at the end. As root,
 * initdb and pg_ctl run as the `postgres` user, which owns the temp dir. Each test gets a
 * database of its own from `createDatabase()`, whose default collation is ICU's en-US, so
 * a query that forgot `COLLATE "C"` sorts 'B' after 'a' and a test sees it.
 *
 * initdb takes seconds; its output for this PostgreSQL version is kept once in the temp
 * dir (postern-pg-template-<version>) and copied for each server.
 *
 * Only the server's speed is traded for the test machine: fsync is off, which changes
 * nothing a test can see short of the machine losing power (a killed server's committed
 * writes are in the kernel already).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A running test server. */
export interface PostgresServer {
  port: number;
  /** The data directory (PGDATA). */
  dataDir: string;
  /** How long initdb + start took, in ms. */
  startupMs: number;
  /** A URL for a database on this server (trust authentication as user postgres). */
  url(database: string): string;
  /** Creates an empty database with a fresh name and returns its URL; dropped in t.after when a test is given (each takes ~10 MB). */
  createDatabase(t?: { after(fn: () => unknown): unknown }): Promise<string>;
  /** Drops a database made by createDatabase (by URL), whoever is still connected. */
  dropDatabase(url: string): Promise<void>;
  /** Runs SQL on a database (a name or a URL), on a connection of its own. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(database: string, text: string, values?: unknown[]): Promise<R[]>;
  /** Stops the server the hard way (a crash: no checkpoint, recovery on the next start); the event loop keeps running. */
  crash(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its files; safe to call twice. */
  stop(): void;
}

/** The newest installed server's bin directory, e.g. /usr/lib/postgresql/15/bin. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('PostgreSQL is not installed: run `npm run pretest` (scripts/ensure-system-deps.ts) or apt-get install postgresql');
  return join(base, versions[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

function pgCommand(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/** Runs a server binary, as `postgres` when we are root (PostgreSQL refuses to run as root). */
function runPg(bin: string, args: string[], what: string): void {
  const [cmd, argv] = pgCommand(bin, args);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000, cwd: '/' });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
}

/** runPg without blocking the event loop, so traffic in the test process goes on meanwhile. */
function runPgAsync(bin: string, args: string[], what: string): Promise<void> {
  const [cmd, argv] = pgCommand(bin, args);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: 'utf8', timeout: 60_000, cwd: '/' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${what} failed: ${stderr || stdout || err.message}`));
      else resolve();
    });
  });
}

let counter = 0;

function chownToPostgres(path: string): void {
  if (!asRoot) return;
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(path, id('-u'), id('-g'));
}

/** An initdb'd data directory for this version, made once and then only copied. */
function templateDataDir(bin: string): string {
  const version = execFileSync(join(bin, 'initdb'), ['--version'], { encoding: 'utf8' }).match(/\d+(\.\d+)*/)?.[0] ?? 'unknown';
  const template = join(tmpdir(), `postern-pg-template-${version}-${process.getuid?.() ?? 0}`);
  if (existsSync(join(template, 'data', 'PG_VERSION'))) return join(template, 'data');
  // Made under a name of its own and renamed, so test files starting together never see half of one.
  const work = mkdtempSync(`${template}.tmp-`);
  chownToPostgres(work);
  runPg(join(bin, 'initdb'), ['-D', join(work, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], 'initdb');
  try {
    renameSync(work, template);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another test file made it first
  }
  return join(template, 'data');
}

/** Starts a fresh server; stopped and removed in t.after (a test's or a file's `after`). */
export async function startPostgres(t: { after(fn: () => unknown): unknown }): Promise<PostgresServer> {
  const t0 = performance.now();
  const bin = postgresBinDir();
  const template = templateDataDir(bin);
  const root = mkdtempSync(join(tmpdir(), 'postern-pg-'));
  const dataDir = join(root, 'data');
  chownToPostgres(root);
  // -a keeps the owner (postgres) and the mode PostgreSQL insists on (0700).
  execFileSync('cp', ['-a', template, dataDir]);
  const port = await freePort();
  const opts = [
    `-c listen_addresses=127.0.0.1`, `-c port=${port}`, `-k ${root}`,
    '-c fsync=off', '-c full_page_writes=off', '-c max_connections=200', '-c shared_buffers=16MB',
  ].join(' ');
  const log = join(root, 'server.log');
  let running = false;
  const startArgs = ['start', '-w', '-t', '60', '-D', dataDir, '-l', log, '-o', opts];
  const stopArgs = (mode: string): string[] => ['stop', '-w', '-t', '60', '-m', mode, '-D', dataDir];
  let removed = false;
  const server: PostgresServer = {
    port,
    dataDir,
    startupMs: 0,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(t) {
      const name = `t${process.pid}_${++counter}`;
      await server.sql('postgres', `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`);
      const url = server.url(name);
      t?.after(() => (removed ? undefined : server.dropDatabase(url)));
      return url;
    },
    async dropDatabase(url) {
      const name = new URL(url).pathname.slice(1);
      await server.sql('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    async sql(database, text, values) {
      const client = new pg.Client({ connectionString: database.startsWith('postgres://') ? database : server.url(database) });
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end();
      }
    },
    async crash() {
      running = false;
      await runPgAsync(join(bin, 'pg_ctl'), stopArgs('immediate'), 'pg_ctl stop');
    },
    async start() {
      await runPgAsync(join(bin, 'pg_ctl'), startArgs, 'pg_ctl start');
      running = true;
    },
    stop() {
      if (removed) return;
      removed = true;
      const t1 = performance.now();
      try {
        if (running) runPg(join(bin, 'pg_ctl'), stopArgs('immediate'), 'pg_ctl stop');
        running = false;
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
      console.log(`# PostgreSQL stopped and removed in ${Math.round(performance.now() - t1)} ms`);
    },
  };
  try {
    runPg(join(bin, 'pg_ctl'), startArgs, 'pg_ctl start');
    running = true;
  } catch (err) {
    server.stop();
    throw err;
  }
  server.startupMs = Math.round(performance.now() - t0);
  t.after(() => server.stop());
  return server;
}
