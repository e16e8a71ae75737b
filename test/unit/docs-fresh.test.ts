/** man/ and completions/ are generated from the commander tree; this fails when they are stale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateDocs } from '../../scripts/docs.ts';

test('checked-in man pages and completions match the command tree (run npm run gen-docs)', async () => {
  const files = await generateDocs();
  for (const [path, content] of files) {
    assert.ok(existsSync(path), `${path} is missing: run npm run gen-docs`);
    assert.equal(readFileSync(path, 'utf8'), content, `${path} is stale: run npm run gen-docs`);
  }
  for (const dir of ['man', 'completions']) {
    for (const f of readdirSync(dir)) assert.ok(files.has(join(dir, f)), `${join(dir, f)} is not generated any more: run npm run gen-docs`);
  }
});

test('there is a man page for every command, and completions name every command', async () => {
  const files = await generateDocs();
  for (const cmd of ['login', 'status', 'logout', 'signup', 'serve', 'users-add', 'users-ls', 'users-rm', 'users-reset', 'tokens-add', 'ca-export']) {
    assert.ok(files.has(`man/postern-${cmd}.1`), cmd);
  }
  assert.match(files.get('completions/postern.bash')!, /"users"\) words="add ls rm reset/);
  assert.match(files.get('completions/postern.fish')!, /-a 'login'/);
  assert.match(files.get('completions/_postern')!, /^#compdef postern/);
});
