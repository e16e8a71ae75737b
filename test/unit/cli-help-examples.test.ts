/**
 * Every `postern …` that the README's code blocks and the commands' `--help` show parses
 * with the real command tree: a command that exists, options it has, values its options
 * accept, every required argument, no extra ones. The tree is the one `postern` builds
 * (buildProgram); only each command's action is swapped for one that notes it was reached,
 * so nothing runs. The integration tests client-readme*.test.ts run the lines for real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { CommanderError } from 'commander';
import type { Command } from 'commander';
import { walk } from '../../scripts/docs.ts';
import { README, commandTree, exampleBlocks, helpEpilogues, helpExamples, posternArgvs, readmeShellBlocks, shellCommands } from '../helpers/readme.ts';

/** Parses `argv` with a fresh command tree whose actions only note their command; resolves with the command reached. */
async function parseOnly(argv: string[]): Promise<{ reached?: string; error?: string }> {
  const { program, output } = await commandTree();
  let reached: string | undefined;
  for (const { cmd, path } of walk(program)) cmd.action(() => { reached = path.join(' '); });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return { error: `${err.code}: ${err.message}\n${output()}` };
    return { error: String(err) };
  }
  return reached === undefined ? { error: `no command ran (help shown?)\n${output()}` } : { reached };
}

/** The command path that `words` name (`lock ls`), as far as they name one; undefined when the first does not. */
function commandPath(program: Command, words: string[]): string | undefined {
  let cmd = program;
  const path: string[] = [];
  for (const w of words) {
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (!sub) break;
    cmd = sub;
    path.push(w);
  }
  return path.length > 0 ? path.join(' ') : undefined;
}

test('every postern line of the README\'s sh blocks parses with the command tree', async () => {
  const blocks = readmeShellBlocks();
  let checked = 0;
  for (const { lines } of blocks) {
    for (const l of lines) {
      for (const argv of posternArgvs(l.text)) {
        const r = await parseOnly(argv);
        assert.equal(r.error, undefined, `README.md:${l.line} (${l.heading}): postern ${argv.join(' ')}\n${r.error}`);
        checked++;
      }
    }
  }
  // The blocks of "For engineers", "Reaching nodes", "Other clients" (PuTTY's -proxycmd is a
  // string, not a command), "Session recordings", "Live sessions", "For admins", "Storage".
  assert.ok(checked >= 45, `only ${checked} postern commands found in the README`);
});

test('the README\'s sh blocks call only programs a reader has, and no alternatives written as pipes (`ls | rm NAME`)', () => {
  // Each program is run by a test (client-readme*.test.ts) or, for npm, by CI itself.
  const known = new Set(['postern', 'npm', 'ssh', 'echo', 'puttygen', 'plink', 'pscp', 'mkdir', 'printf']);
  for (const { lines } of readmeShellBlocks()) {
    for (const l of lines) {
      for (const words of shellCommands(l.text)) {
        assert.ok(known.has(words[0]), `README.md:${l.line}: "${words.join(' ')}" is not a program the README's readers run: write each command on its own line`);
        assert.ok(!words.some((w) => /^\[|\]$/.test(w)), `README.md:${l.line}: [optional] notation is not shell: ${l.text}`);
      }
    }
  }
});

test('every example of every command\'s --help parses with the command tree', async () => {
  const examples = await helpExamples();
  let checked = 0;
  for (const ex of examples) {
    for (const argv of posternArgvs(ex.text)) {
      const r = await parseOnly(argv);
      assert.equal(r.error, undefined, `postern ${ex.command} --help: ${ex.text}\n${r.error}`);
      checked++;
    }
  }
  // Each command's Examples section, the program's "Engineers:"/"Admins:" lines, the
  // ProxyCommand of proxy ssh, and users unlock's "instead:  postern users reset NAME".
  assert.ok(checked >= 40, `only ${checked} examples found in --help`);
  const texts = examples.map((e) => e.text);
  for (const want of ['postern login --proxy HOST --user NAME', 'postern status', 'postern users reset NAME', 'postern proxy ssh --proxy proxy.example.com:3080 %r@%h:%p', 'postern lock rm 3f2a']) {
    assert.ok(texts.includes(want), `the examples include "${want}":\n${texts.join('\n')}`);
  }
});

test('a --help example\'s description starts in one column, two spaces after the longest command, so no command runs into it', async () => {
  // `  postern ssh -N -L 8080:localhost:80 web1 forward a port until Ctrl-C` once read its
  // description as the remote command to run.
  let blocks = 0;
  for (const { command, text } of await helpEpilogues()) {
    for (const block of exampleBlocks(text)) {
      const columns = block.map((l) => /\S {2,}(?=\S)/.exec(l)).filter((m) => m !== null).map((m) => m.index + m[0].length);
      if (columns.length < 2) continue;
      blocks++;
      const column = Math.max(...columns);
      for (const l of block) {
        assert.ok(l.length <= column - 2 || l.slice(column - 2, column) === '  ', `postern ${command} --help: a description not in its column ${column}:\n${block.join('\n')}`);
        if (l.length > column) assert.notEqual(l[column], ' ', `postern ${command} --help: a description not in its column ${column}:\n${block.join('\n')}`);
      }
    }
  }
  assert.ok(blocks >= 2, 'ls and ssh have described examples');
});

test('each postern named in the README\'s inline code and in --help\'s text is a command that exists', async () => {
  const { program } = await commandTree();
  const readme = readFileSync(README, 'utf8');
  // Inline code outside the fenced blocks: `postern ssh`, `postern proxy ssh %r@%h:%p`.
  const prose = readme.replace(/^```[\s\S]*?^```/gm, '');
  const spans = [...prose.matchAll(/`(postern [^`]+)`/g)].map((m) => m[1]);
  assert.ok(spans.length >= 20, `only ${spans.length} inline postern commands`);
  for (const span of spans) {
    const words = span.split(/\s+/).slice(1);
    if (words[0]?.startsWith('-')) continue;
    assert.ok(commandPath(program, words), `README names \`${span}\`, but "${words[0]}" is no postern command`);
  }
  for (const { cmd, path } of walk(program)) {
    let text = '';
    cmd.configureOutput({ writeOut: (s) => { text += s; }, writeErr: (s) => { text += s; } });
    cmd.outputHelp();
    for (const m of text.matchAll(/(?<![/\w.-])postern ([a-z][a-z-]*)/g)) {
      // The usage line names the command itself; the rest must name commands.
      assert.ok(commandPath(program, [m[1]]), `postern ${path.join(' ')} --help names "postern ${m[1]}", which is no command`);
    }
  }
});

/** Which test runs each sh block of the README as written, against a real cluster. */
const RUN_BY: Record<string, string> = {
  'For engineers': 'test/integration/client-readme-engineer.test.ts',
  'Reaching nodes': 'test/integration/client-readme.test.ts',
  'Other clients': 'test/integration/client-readme-putty.test.ts',
  'Session recordings': 'test/integration/client-readme-engineer.test.ts',
  'Live sessions and join': 'test/integration/client-readme-engineer.test.ts',
  'For admins': 'test/integration/client-readme-admin.test.ts',
};

/** The README's command lines no test runs, and why (each still parsed above). */
const NOT_RUN: Array<{ line: string; why: string }> = [
  { line: 'npm install && npm start', why: 'npm install fetches packages from the registry; npm start keeps its cluster in the repository\'s own .postern/data' },
  { line: 'npm install && npm test', why: 'the whole suite, registry included: it is what CI runs (.ci/run)' },
  {
    line: "postern serve --roles auth --storage 'postgres://postern@db.example.com:5432/postern?sslmode=verify-full&sslrootcert=/etc/postern/pg-ca.pem'",
    why: 'needs a PostgreSQL server with TLS and a CA file; serve-postgres.test.ts runs serve --storage on a real PostgreSQL',
  },
];

test('every sh block of the README is run by a test, or its lines are listed here with the reason they are not', () => {
  const notRun = new Set(NOT_RUN.map((n) => n.line));
  const used = new Set<string>();
  for (const block of readmeShellBlocks()) {
    const file = RUN_BY[block.heading];
    if (file) {
      assert.ok(existsSync(file), `${file} runs "${block.heading}"`);
      assert.ok(readFileSync(file, 'utf8').includes(`readmeBlock('${block.heading}'`), `${file} reads the block "${block.heading}" with readmeBlock()`);
      continue;
    }
    for (const l of block.lines) {
      assert.ok(notRun.has(l.command), `README.md:${l.line} (${block.heading}) is run by no test: ${l.command}\n(add its block to RUN_BY, or the line to NOT_RUN with the reason)`);
      used.add(l.command);
    }
  }
  assert.deepEqual([...notRun].filter((l) => !used.has(l)), [], 'NOT_RUN lists only lines the README has');
});
