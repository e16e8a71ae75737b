/**
 * Several auth servers on one PostgreSQL (a real server, test/helpers/postgres.ts): two
 * backends with pools of their own, as two auth servers have. Revisions grow across both
 * under concurrent writes, compare-and-swap and create races are decided once across them,
 * two processes migrating an empty database at the same moment apply each step once, and
 * two auth services starting together on an empty database create the cluster's CAs once.
 * The races run many times, each on a fresh database.
 */
import { after, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlreadyExistsError, ConflictError } from '../../src/core/errors.ts';
import { systemClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import type { PostgresBackend } from '../../src/storage/postgres.ts';
import { LATEST_PG_SCHEMA_VERSION } from '../../src/storage/postgres-migrations.ts';
import { startAuthService } from '../../src/auth/service.ts';
import { adminIdentityPath } from '../../src/core/server-paths.ts';
import type { IdentityFile } from '../../src/core/server-paths.ts';
import { ensureClusterCas } from '../../src/auth/cluster-cas.ts';
import { sshCaPublicKey } from '../../src/auth/ssh-ca.ts';
import { startPostgres } from '../helpers/postgres.ts';

const RACE_ROUNDS = 30;
const OPENER = fileURLToPath(new URL('../helpers/postgres-opener.ts', import.meta.url));

const server = await startPostgres({ after });
console.log(`# PostgreSQL started in ${server.startupMs} ms`);

/** Two backends on one fresh database: two auth servers. */
async function twoServers(t: TestContext, url?: string): Promise<[PostgresBackend, PostgresBackend]> {
  const db = url ?? await server.createDatabase(t);
  const a = await openPostgresBackend({ url: db, sweepIntervalMs: 0 });
  t.after(() => a.close());
  const b = await openPostgresBackend({ url: db, sweepIntervalMs: 0 });
  t.after(() => b.close());
  return [a, b];
}

test('revisions grow across two auth servers under concurrent writes', async (t) => {
  const [a, b] = await twoServers(t);
  let highestAcked = 0;
  const seen = new Set<number>();
  // Each write must get a revision above every revision acknowledged (by either server) before it began.
  const writer = async (backend: PostgresBackend, name: string): Promise<void> => {
    let last = 0;
    for (let i = 0; i < 150; i++) {
      const floor = highestAcked;
      const op = i % 3;
      const item = op === 0 ? await backend.put(`w/${name}/${i}`, 'x')
        : op === 1 ? await backend.create(`w/${name}/c${i}`, 'x')
          : { revision: await backend.atomic([{ kind: 'put', key: `w/${name}/a${i}`, value: 'x' }, { kind: 'put', key: `w/${name}/b${i}`, value: 'y' }]) };
      assert.ok(item.revision > floor, `revision ${item.revision} not above ${floor}`);
      assert.ok(item.revision > last, `${name}: revision ${item.revision} after ${last}`);
      assert.ok(!seen.has(item.revision), `revision ${item.revision} given twice`);
      seen.add(item.revision);
      last = item.revision;
      highestAcked = Math.max(highestAcked, item.revision);
    }
  };
  await Promise.all([0, 1, 2, 3].flatMap((n) => [writer(a, `a${n}`), writer(b, `b${n}`)]));
  assert.equal(seen.size, 8 * 150);
  assert.equal((await a.getRange('w')).length, 8 * (100 + 2 * 50));
});

test('compare-and-swap across two auth servers: no increment is lost, stale writers conflict', async (t) => {
  const [a, b] = await twoServers(t);
  await a.create('counter', '0');
  let conflicts = 0;
  const incrementer = async (backend: PostgresBackend, n: number): Promise<void> => {
    for (let done = 0; done < n;) {
      const cur = await backend.get('counter');
      assert.ok(cur);
      try {
        await backend.compareAndSwap('counter', cur.revision, String(Number(cur.value) + 1));
        done++;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        conflicts++;
      }
    }
  };
  await Promise.all([incrementer(a, 60), incrementer(b, 60), incrementer(a, 60), incrementer(b, 60)]);
  assert.equal((await b.get('counter'))?.value, '240');
  assert.ok(conflicts > 0, 'four writers on one key never met: the race did not happen');

  // The same in atomic batches: exactly one of two batches holding the same revision wins.
  for (let i = 0; i < RACE_ROUNDS; i++) {
    const cur = await a.get('counter');
    assert.ok(cur);
    const results = await Promise.allSettled([a, b].map((backend, j) => backend.atomic([
      { kind: 'cas', key: 'counter', expectedRevision: cur.revision, value: `batch ${i} by ${j}` },
      { kind: 'create', key: `log/${i}/${j}`, value: 'x' },
    ])));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `round ${i}: ${results.map((r) => r.status).join(', ')}`);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof ConflictError, String(lost.reason));
    assert.equal((await a.getRange(`log/${i}`)).length, 1, 'the losing batch left its create behind');
  }
});

test('create of one key by two auth servers at once succeeds once', async (t) => {
  const [a, b] = await twoServers(t);
  for (let i = 0; i < RACE_ROUNDS; i++) {
    const results = await Promise.allSettled([a.create(`once/${i}`, 'a'), b.create(`once/${i}`, 'b')]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${i}`);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(lost.reason instanceof AlreadyExistsError, String(lost.reason));
  }
});

/** A child process that opens databases on command (test/helpers/postgres-opener.ts). */
function opener(t: TestContext): { send(url: string): Promise<string> } {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [OPENER], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let buffered = '';
  let stderr = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      const w = waiting.shift();
      if (w) w(line); else lines.push(line);
    }
  });
  const next = (): Promise<string> => new Promise((resolve, reject) => {
    const l = lines.shift();
    if (l !== undefined) return resolve(l);
    const timer = setTimeout(() => reject(new Error(`the opener did not answer in time\n${stderr}`)), 30_000);
    waiting.push((line) => { clearTimeout(timer); resolve(line); });
  });
  const ready = next();
  return {
    async send(url) {
      assert.equal(await ready, 'ready');
      child.stdin.write(`open ${url}\n`);
      return next();
    },
  };
}

test(`two processes migrating an empty database at the same moment apply each step once (${RACE_ROUNDS} rounds)`, async (t) => {
  const [p, q] = [opener(t), opener(t)];
  for (let i = 0; i < RACE_ROUNDS; i++) {
    const url = await server.createDatabase();
    const answers = await Promise.all([p.send(url), q.send(url)]);
    assert.deepEqual(answers, [`ok ${LATEST_PG_SCHEMA_VERSION}`, `ok ${LATEST_PG_SCHEMA_VERSION}`], `round ${i}`);
    const versions = await server.sql(url, 'SELECT version FROM postern_schema_version ORDER BY version');
    assert.deepEqual(versions.map((r) => Number(r.version)), [...Array(LATEST_PG_SCHEMA_VERSION).keys()].map((v) => v + 1));
    const opened = await server.sql(url, "SELECT count(*)::int AS n FROM postern_items WHERE key LIKE 'opened/%'");
    assert.equal(opened[0].n, 2, `round ${i}: both processes wrote`);
    await server.dropDatabase(url);
  }
});

test(`the cluster's CAs are created by exactly one of two auth servers racing on an empty database (${RACE_ROUNDS} rounds)`, async (t) => {
  for (let i = 0; i < RACE_ROUNDS; i++) {
    const url = await server.createDatabase();
    const [a, b] = await twoServers(t, url);
    const made = await Promise.all([ensureClusterCas(a, 'ha.example', new Date()), ensureClusterCas(b, 'ha.example', new Date())]);
    assert.deepEqual(made.filter(Boolean).length, 1, `round ${i}: ${made}`);
    const cas = await a.getRange('cas');
    assert.deepEqual(cas.map((c) => c.key), ['cas/ssh/host', 'cas/ssh/user', 'cas/tls']);
    assert.equal(new Set(cas.map((c) => c.revision)).size, 1);
    await Promise.all([a.close(), b.close()]);
    await server.dropDatabase(url);
  }
});

test(`two auth services starting together on an empty database create the CAs once (${RACE_ROUNDS} rounds)`, async (t) => {
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'postern-ha-')));
  t.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  for (let i = 0; i < RACE_ROUNDS; i++) {
    const url = await server.createDatabase();
    const auths = await Promise.all(dirs.map((dataDir) => startAuthService({
      dataDir, storage: { kind: 'postgres', url }, clusterName: 'ha.example', authAddr: { host: '127.0.0.1', port: 0 },
      clock: systemClock, log: silentLogger,
    })));
    try {
      const [x, y] = auths;
      assert.equal(x.caPin, y.caPin, `round ${i}: two TLS CAs`);
      for (const type of ['user', 'host'] as const) {
        assert.equal(await sshCaPublicKey(x.backend, type), await sshCaPublicKey(y.backend, type), `round ${i}: two ${type} CAs`);
      }
      // One batch wrote the name and all three CAs: one revision, and nothing written over them.
      const rows = await server.sql<{ key: string; revision: string }>(url, "SELECT key, revision::text FROM postern_items WHERE key LIKE 'cas/%' OR key = 'cluster/name' ORDER BY key");
      assert.deepEqual(rows.map((r) => r.key), ['cas/serial', 'cas/ssh/host', 'cas/ssh/user', 'cas/tls', 'cluster/name'].filter((k) => rows.some((r) => r.key === k)));
      const identity = rows.filter((r) => r.key !== 'cas/serial');
      assert.equal(identity.length, 4, `round ${i}: ${JSON.stringify(rows)}`);
      assert.equal(new Set(identity.map((r) => r.revision)).size, 1, `round ${i}: ${JSON.stringify(identity)}`);
      // What each service handed out was issued by the CA that stayed, not by a candidate of its own.
      const stored = (await server.sql<{ value: string }>(url, "SELECT value FROM postern_items WHERE key = 'cas/tls'"))[0].value;
      for (const dataDir of dirs) {
        const admin = JSON.parse(readFileSync(adminIdentityPath(dataDir), 'utf8')) as IdentityFile;
        assert.equal(admin.caPem, JSON.parse(stored).certPem, `round ${i}: ${dataDir}`);
      }
    } finally {
      await Promise.all(auths.map((a) => a.close()));
      await server.dropDatabase(url);
    }
  }
});
