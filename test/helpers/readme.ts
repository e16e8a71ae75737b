/**
 * The documented examples, read the way a user reads them: the command lines of README.md's
 * ```sh blocks (a line ending in `\` goes on, a line holding only a comment explains the one
 * above), the example lines of every command's `--help`, and a small shell word splitter
 * that turns one line into the simple commands it runs (`a | b && c > f`: a, b, c), so a
 * test can check each `postern …` against the command tree or run the line with bash.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.ts';
import { noSignals, realClients } from '../../src/cli/deps.ts';
import type { Deps } from '../../src/cli/deps.ts';
import { helpEpilogue, walk } from '../../scripts/docs.ts';

/** README.md's path. */
export const README = new URL('../../README.md', import.meta.url);

/** One command line of a README code block. */
export interface ReadmeLine {
  /** As written, continuation lines included (bash runs it as it is). */
  text: string;
  /** Its first line's number in README.md. */
  line: number;
  /** The heading the block is under. */
  heading: string;
}

/** One ```sh block of the README. */
export interface ReadmeBlock {
  heading: string;
  /** The line number of its opening fence. */
  line: number;
  lines: ReadmeLine[];
}

/** Every ```sh block of README.md, in order, with its command lines. */
export function readmeShellBlocks(text = readFileSync(README, 'utf8')): ReadmeBlock[] {
  const rows = text.split('\n');
  const blocks: ReadmeBlock[] = [];
  let heading = '';
  for (let i = 0; i < rows.length; i++) {
    const h = /^#{1,6} (.*)$/.exec(rows[i]);
    if (h) { heading = h[1]; continue; }
    if (!rows[i].startsWith('```')) continue;
    const lang = rows[i].slice(3).trim();
    const start = i;
    const body: Array<{ text: string; n: number }> = [];
    for (i++; i < rows.length && !rows[i].startsWith('```'); i++) body.push({ text: rows[i], n: i + 1 });
    if (lang !== 'sh') continue;
    const lines: ReadmeLine[] = [];
    for (let j = 0; j < body.length; j++) {
      const first = body[j];
      if (first.text.trim() === '' || first.text.trim().startsWith('#')) continue;
      let joined = first.text;
      while (/\\$/.test(joined) && j + 1 < body.length) joined += `\n${body[++j].text}`;
      lines.push({ text: joined, line: first.n, heading });
    }
    blocks.push({ heading, line: start + 1, lines });
  }
  return blocks;
}

/** The command lines of the `index`th ```sh block under the heading `heading` (its text, without the #s). */
export function readmeBlock(heading: string, index = 0): ReadmeLine[] {
  const under = readmeShellBlocks().filter((b) => b.heading === heading);
  assert.ok(under.length > index, `README.md has ${index + 1} sh block(s) under "${heading}" (found ${under.length})`);
  return under[index].lines;
}

/**
 * The simple commands one shell line runs, each as its words (quotes removed, redirections
 * and their targets left out, `$(…)` and `$VAR` kept as text): enough to know which programs
 * a line calls and with which arguments. Throws on an unterminated quote.
 */
export function shellCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let skipNext = false;
  const endWord = (): void => {
    if (!inWord) return;
    if (skipNext) skipNext = false;
    else words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === '\\') {
      if (line[i + 1] === '\n') { i++; continue; }
      word += line[i + 1] ?? '';
      inWord = true;
      i++;
      continue;
    }
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      let depth = 0;
      for (; j < line.length; j++) {
        if (line[j] === '\\') { word += line[j + 1] ?? ''; j++; continue; }
        if (line[j] === '$' && line[j + 1] === '(') depth++;
        else if (line[j] === ')' && depth > 0) depth--;
        else if (line[j] === "'" && depth > 0) { const end = line.indexOf("'", j + 1); if (end < 0) break; word += line.slice(j, end + 1); j = end; continue; }
        else if (line[j] === '"' && depth === 0) break;
        word += line[j];
      }
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      inWord = true;
      i = j;
      continue;
    }
    if (ch === '#' && !inWord) break;
    if (ch === ' ' || ch === '\t' || ch === '\n') { endWord(); continue; }
    if (ch === '|' || ch === ';' || (ch === '&' && line[i + 1] === '&')) {
      endCommand();
      if (line[i + 1] === ch) i++;
      continue;
    }
    if (ch === '>' || ch === '<') {
      // A redirection: `2>` and `>>` included; its target is the next word.
      if (inWord && /^\d+$/.test(word)) { word = ''; inWord = false; } else endWord();
      if (line[i + 1] === '>') i++;
      skipNext = true;
      continue;
    }
    word += ch;
    inWord = true;
  }
  endCommand();
  return commands;
}

/** The `postern` commands of a shell line, as argv without the program name. */
export function posternArgvs(line: string): string[][] {
  return shellCommands(line).filter((c) => c[0] === 'postern').map((c) => c.slice(1));
}

/** Deps that print nowhere, for building the command tree outside a run. */
function quietDeps(): { deps: Deps; output: () => string } {
  let text = '';
  const sink = new PassThrough();
  sink.on('data', (d) => { text += String(d); });
  return {
    deps: { io: { stdin: new PassThrough(), stdout: sink, stderr: sink }, env: {}, homeDir: '/nonexistent', clock: { now: () => new Date() }, selfCommand: 'postern', signals: noSignals, openTerminal: () => undefined, clients: realClients },
    output: () => text,
  };
}

/** The whole command tree, as `postern --help` builds it. */
export async function commandTree(): Promise<{ program: Command; output: () => string }> {
  const { deps, output } = quietDeps();
  return { program: await buildProgram(deps, { exitCode: 0 }), output };
}

/** One example of a command's `--help`. */
export interface HelpExample {
  /** The command whose help shows it: `lock ls`, or `` for the program's. */
  command: string;
  /** The line: a shell command, without the words that describe it. */
  text: string;
}

/** What each command's `--help` prints after its options (examples, notes), by command path (`` for the program). */
export async function helpEpilogues(): Promise<Array<{ command: string; text: string }>> {
  const { program } = await commandTree();
  return [{ cmd: program, path: [] as string[] }, ...walk(program)].map(({ cmd, path }) => ({ command: path.join(' '), text: helpEpilogue(cmd) }));
}

/** The indented lines under each "Examples:" (or "Example:") heading of a help text, by block. */
export function exampleBlocks(text: string): string[][] {
  const lines = text.split('\n');
  const blocks: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^Examples?:$/.test(lines[i])) continue;
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j].startsWith('  '); j++) block.push(lines[j]);
    blocks.push(block);
  }
  return blocks;
}

/**
 * What each command's `--help` shows as a command to type: the lines under "Examples:" or
 * "Example:" (the words after two spaces or a # describe it), and `postern …` set off in
 * the text by two spaces, after `ProxyCommand` or after a comma (`…instead:  postern users
 * reset NAME`, `postern serve, postern users add …`), up to a comma or the end of the line.
 */
export async function helpExamples(): Promise<HelpExample[]> {
  const examples: HelpExample[] = [];
  for (const { command, text } of await helpEpilogues()) {
    const inExamples = new Set(exampleBlocks(text).flat());
    for (const line of inExamples) examples.push({ command, text: line.trim().split(/\s{2,}#?|\s#\s/)[0] });
    for (const l of text.split('\n')) {
      if (inExamples.has(l)) continue;
      for (const m of l.matchAll(/(?:^\s*|\S\s{2,}|ProxyCommand |, (?:then )?)(postern [^,\n]*?)(?=,|\s{2,}|$)/g)) examples.push({ command, text: m[1] });
    }
  }
  return examples;
}
