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
import { writePlayCache } from '../../src/cli/play-cache.ts';

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

/**
 * The generated script in a real interactive bash (`bash -i`, no rc files): `complete -p`
 * shows it is installed, then COMP_LINE/COMP_POINT and COMP_WORDS/COMP_CWORD are set as
 * bash sets them for the line (split at COMP_WORDBREAKS) and the function is called.
 */
function completeLine(script: string, home: string, line: string, words: string[], wordbreaks?: string): string[] {
  const file = join(home, 'postern.bash');
  writeFileSync(file, script);
  const q = (w: string): string => `'${w.replace(/'/g, "'\\''")}'`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-i', '-c', [
    `source ${q(file)}`,
    'complete -p postern >&2',
    ...(wordbreaks ? [`COMP_WORDBREAKS=${q(wordbreaks)}`] : []),
    `COMP_LINE=${q(line)}; COMP_POINT=\${#COMP_LINE}; COMP_WORDS=(${words.map(q).join(' ')}); COMP_CWORD=${words.length - 1}`,
    '_postern',
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join('\n')], { encoding: 'utf8', env: { PATH: process.env.PATH, TSH_HOME: home, HOME: '/nonexistent', TERM: 'dumb' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /complete -o default -F _postern postern/);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('bash: user@host keeps the user@ whatever COMP_WORDBREAKS holds; option values, setting names and values, node names for nodes rm/update, recording ids for play', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-compl-'));
  writeLsCache(home, { proxy: 'p1.example.com', cluster: 'example.com', names: ['web1', 'web2', 'db1'], complete: true, now: new Date() });
  writePlayCache(home, ['3f2a0000-0000-4000-8000-000000000001', '3f2b0000-0000-4000-8000-000000000002', '9c000000-0000-4000-8000-000000000003'], new Date());
  const script = (await generateDocs()).get('completions/postern.bash')!;
  // Default COMP_WORDBREAKS: "ubuntu@we" is one word; bash replaces all of it.
  assert.deepEqual(completeLine(script, home, 'postern ssh ubuntu@we', ['postern', 'ssh', 'ubuntu@we']), ['ubuntu@web1', 'ubuntu@web2']);
  // With "@" a word break (as some setups add), bash replaces only what follows the "@".
  const breaks = ' \t\n"\'><=;|&(:@';
  assert.deepEqual(completeLine(script, home, 'postern ssh ubuntu@we', ['postern', 'ssh', 'ubuntu', '@', 'we'], breaks), ['web1', 'web2']);
  assert.deepEqual(completeLine(script, home, 'postern ssh ubuntu@', ['postern', 'ssh', 'ubuntu', '@'], breaks), ['@db1', '@web1', '@web2']);
  // --format values, after a blank and after "=" (a default word break).
  assert.deepEqual(completeLine(script, home, 'postern ls --format ', ['postern', 'ls', '--format', '']), ['json', 'names', 'text']);
  assert.deepEqual(completeLine(script, home, 'postern users ls --format=j', ['postern', 'users', 'ls', '--format', '=', 'j']), ['json']);
  assert.deepEqual(completeLine(script, home, 'postern play --format ', ['postern', 'play', '--format', '']), ['cast', 'pty', 'text']);
  // An option with a free value completes nothing of ours (bash falls back to files).
  assert.deepEqual(completeLine(script, home, 'postern login --proxy ', ['postern', 'login', '--proxy', '']), []);
  // Settings: names, then the values of a setting with a short list.
  assert.deepEqual(completeLine(script, home, 'postern settings set lock', ['postern', 'settings', 'set', 'lock']), ['lockout_attempts', 'lockout_duration', 'lockout_window']);
  assert.deepEqual(completeLine(script, home, 'postern settings set session_recording ', ['postern', 'settings', 'set', 'session_recording', '']), ['off', 'proxy']);
  // Node names for the admin's node commands; recording ids for play.
  assert.deepEqual(completeLine(script, home, 'postern nodes rm w', ['postern', 'nodes', 'rm', 'w']), ['web1', 'web2']);
  assert.deepEqual(completeLine(script, home, 'postern nodes update d', ['postern', 'nodes', 'update', 'd']), ['db1']);
  assert.deepEqual(completeLine(script, home, 'postern play 3f', ['postern', 'play', '3f']), ['3f2a0000-0000-4000-8000-000000000001', '3f2b0000-0000-4000-8000-000000000002']);
  // Subcommands and options as before.
  assert.deepEqual(completeLine(script, home, 'postern users u', ['postern', 'users', 'u']), ['unlock', 'update']);
  assert.deepEqual(completeLine(script, home, 'postern tokens ', ['postern', 'tokens', '']), ['add', 'ls', 'rm']);
});

test('zsh and fish complete node names for nodes rm/update, recording ids for play, and setting names', async () => {
  const files = await generateDocs();
  const zsh = files.get('completions/_postern')!;
  assert.match(zsh, /_postern_nodes_rm\(\) \{\n {2}_arguments .*'\*:node:_postern_nodes'/);
  assert.match(zsh, /_postern_play\(\) \{\n {2}_arguments .*'1:recording:_postern_recording_ids'/);
  assert.match(zsh, /'1:setting:\(second_factor max_session_ttl .*\)' '2:value:_postern_setting_value'/);
  assert.match(zsh, /'--format\[output format\]:value:\(text json\)'/);
  const fish = files.get('completions/postern.fish')!;
  assert.match(fish, /__fish_seen_subcommand_from nodes; and __fish_seen_subcommand_from update; and not __fish_seen_subcommand_from proxy' -a '\(__postern_nodes\)'/);
  assert.match(fish, /__fish_seen_subcommand_from play' -a '\(__postern_recordings\)'/);
  assert.match(fish, /play-cache\.json/);
  for (const [shell, bin, args] of [['zsh', 'zsh', ['-n']], ['fish', 'fish', ['--no-execute']]] as const) {
    const probe = spawnSync(bin, ['--version']);
    if (probe.error) continue; // not installed here: the syntax check is bash's and the patterns above
    const file = join(mkdtempSync(join(tmpdir(), 'postern-compl-')), shell);
    writeFileSync(file, shell === 'zsh' ? zsh : fish);
    const r = spawnSync(bin, [...args, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${shell}: ${r.stderr}`);
  }
});
