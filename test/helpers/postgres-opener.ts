/**
 * The child process of the concurrent-migration test. For each line `open URL` on stdin it
 * opens the PostgreSQL store at URL (migrating it if needed), writes one item, closes it
 * and prints `ok FROM TO` (the schema versions it saw) or `error CODE MESSAGE`. The parent
 * runs two of these and sends both the same fresh database at the same moment.
 *
 * Usage: node postgres-opener.ts
 */
import { createInterface } from 'node:readline';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import { readPgSchemaVersion } from '../../src/storage/postgres-migrations.ts';
import pg from 'pg';

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) {
  const [cmd, url] = line.split(' ');
  if (cmd !== 'open' || !url) continue;
  try {
    const b = await openPostgresBackend({ url, sweepIntervalMs: 0 });
    await b.put(`opened/${process.pid}`, 'yes');
    await b.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const version = await readPgSchemaVersion(c);
    await c.end();
    process.stdout.write(`ok ${version}\n`);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stdout.write(`error ${e.code ?? 'unknown'} ${String(e.message).replace(/\n/g, ' ')}\n`);
  }
}
