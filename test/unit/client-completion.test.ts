/**
 * Node-name completion from the ls cache, in the generated bash completion run by a real
 * bash: names from $TSH_HOME/ls-cache/*.json, after `login@` too, and no network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDocs } from '../../scripts/docs.ts';
import { writeLsCache } from '../../src/client/ls-cache.ts';

function complete(script: string, home: string, words: string[]): string[] {
  const file = join(home, 'postern.bash');
  writeFileSync(file, script);
  const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source '${file}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _postern; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    encoding: 'utf8', env: { PATH: process.env.PATH, TSH_HOME: home, HOME: '/nonexistent' },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('bash completes node names for ssh and ls from the ls cache of every profile', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-compl-'));
  const now = new Date();
  writeLsCache(home, { proxy: 'p1.example.com', cluster: 'example.com', names: ['web1', 'web2', 'db1'], complete: true, now });
  writeLsCache(home, { proxy: 'p2.example.com', cluster: 'other.com', names: ['wiki'], complete: true, now });
  const script = (await generateDocs()).get('completions/postern.bash')!;
  assert.deepEqual(complete(script, home, ['postern', 'ssh', 'w']), ['web1', 'web2', 'wiki']);
  assert.deepEqual(complete(script, home, ['postern', 'ssh', 'ubuntu@we']), ['ubuntu@web1', 'ubuntu@web2']);
  assert.deepEqual(complete(script, home, ['postern', 'ls', 'd']), ['db1']);
  assert.deepEqual(complete(script, home, ['postern', 'ls', '--se']), ['--search'], 'options still complete');
  assert.deepEqual(complete(script, home, ['postern', 'proxy', 's']), ['ssh'], 'proxy ssh is not a node command');
  // No cache: nothing, and no error.
  assert.deepEqual(complete(script, mkdtempSync(join(tmpdir(), 'postern-compl-')), ['postern', 'ssh', 'w']), []);
});

test('zsh and fish completions read the same cache with the same sed', async () => {
  const files = await generateDocs();
  for (const name of ['completions/_postern', 'completions/postern.fish']) {
    const text = files.get(name)!;
    assert.match(text, /ls-cache\/\*\.json/);
    assert.match(text, /sed -n 's\/\^ \*"/);
    assert.doesNotMatch(text, /curl|wget|\$\(postern|\(postern /, 'no network on TAB');
  }
  assert.match(files.get('completions/_postern')!, /'\*:node:_postern_nodes'/);
  assert.match(files.get('completions/postern.fish')!, /__fish_seen_subcommand_from ssh; and not __fish_seen_subcommand_from proxy' -a '\(__postern_nodes\)'/);
});
