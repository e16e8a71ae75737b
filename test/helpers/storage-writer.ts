/**
 * The child process of the storage crash test. It opens the SQLite store in DATA_DIR and,
 * for i = START … START+COUNT-1, writes `crash/<i>` and advances the `crash-count` counter
 * in one atomic batch, printing the key only after the write's promise resolved. The
 * parent kills it with SIGKILL mid-loop and checks that every printed key survived.
 *
 * Usage: node storage-writer.ts DATA_DIR START COUNT
 */
import { openSqliteBackend } from '../../src/storage/sqlite.ts';

const [dataDir, startArg, countArg] = process.argv.slice(2);
const start = Number(startArg);
const count = Number(countArg);
if (!dataDir || !Number.isSafeInteger(start) || !Number.isSafeInteger(count)) {
  process.stderr.write('usage: storage-writer.ts DATA_DIR START COUNT\n');
  process.exit(2);
}

// Zero-padded so keys sort in write order.
function crashKey(i: number): string {
  return `crash/${String(i).padStart(8, '0')}`;
}

const backend = await openSqliteBackend({ dataDir });
let counter = await backend.get('crash-count');
if (!counter) counter = await backend.create('crash-count', '0');
if (Number(counter.value) !== start) {
  process.stderr.write(`counter is ${counter.value}, expected ${start}\n`);
  process.exit(3);
}
process.stdout.write('ready\n');
let revision = counter.revision;
for (let i = start; i < start + count; i++) {
  const k = crashKey(i);
  revision = await backend.atomic([
    { kind: 'create', key: k, value: JSON.stringify({ i }) },
    { kind: 'cas', key: 'crash-count', expectedRevision: revision, value: String(i + 1) },
  ]);
  // Printed only now: the parent counts this key as acknowledged.
  process.stdout.write(`${k}\n`);
}
await backend.close();
process.stdout.write('done\n');
