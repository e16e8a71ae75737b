/**
 * The documented examples, read the way a user reads them: the command lines of README.md's
 * ```sh blocks (a line ending in `\` goes on, a line holding only a comment explains the one
 * above), the example lines of every command's `--help`, and a small shell word splitter
 * that turns one line into the simple commands it runs (`a | b && c > f`: a, b, c), so a
 * test can check each `postern …` against the command tree or run the line with bash; and
 * a user's shell to run them in (UserShell).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { POSTERN_BIN } from './cli.ts';
import { waitFor } from './wait.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { noSignals, realClients } from '../../src/cli/deps.ts';
import type { Deps } from '../../src/cli/deps.ts';
import { helpEpilogue, walk } from '../../scripts/docs.ts';

/** README.md's path. */
export const README = new URL('../../README.md', import.meta.url);

/** One command line of a README code block. */
export interface ReadmeLine {
  /** As written, continuation lines and comment included (bash runs it as it is). */
  text: string;
  /** The same without its comment and trailing blanks. */
  command: string;
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
      lines.push({ text: joined, command: withoutComment(joined), line: first.n, heading });
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

/** A shell line without its comment (a # that starts a word outside quotes) and trailing blanks. */
export function withoutComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) { if (ch === quote) quote = ''; else if (ch === '\\' && quote === '"') i++; continue; }
    if (ch === '\\') { i++; continue; }
    if (ch === "'" || ch === '"') { quote = ch; continue; }
    if (ch === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
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

/** What a line run in a UserShell left. */
export interface ShellRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A line running on a terminal (script(1)): what it printed so far, its keyboard, its end. */
export interface TerminalRun {
  /** Everything the terminal showed so far (output and echo, both streams). */
  screen(): string;
  /** Types `text` (\r is Enter). */
  type(text: string): void;
  /** Waits until the screen shows `needle` (after `from`, an offset into screen()). */
  waitFor(needle: string | RegExp, opts?: { from?: number; timeoutMs?: number }): Promise<void>;
  /** The exit status of the line (script passes it on). */
  exited: Promise<number | null>;
  /** Ends it (SIGKILL) if it still runs. */
  kill(): void;
}

/** A line that runs until stopped: what it printed, a wait for what it prints, its end. */
export interface Background {
  stdout(): string;
  stderr(): string;
  /** Waits until its stdout shows `needle`; fails at once when it exits first. */
  waitFor(needle: string | RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM to its process group (SIGKILL after 10 s); resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** A prompt on a terminal and what to type when it shows, given the screen so far. */
export interface Answer {
  prompt: RegExp;
  reply: (screen: string) => string | Promise<string>;
}

/**
 * A user's shell for running documented lines as written: its own HOME (~/.tsh may link to a
 * logged-in TSH_HOME; ~/.ssh exists), `postern` on PATH (a launcher running this repository
 * with this Node 24), Debian's PATH after it, bash, a working directory of its own, and
 * nothing of the test's environment. `ssh` on PATH is OpenSSH's with `-F ~/.ssh/config`: it
 * takes its home from the passwd entry, not $HOME, and the tests must not touch root's.
 */
export class UserShell {
  readonly home: string;
  readonly cwd: string;
  private readonly extraEnv: Record<string, string>;

  constructor(dir: string, opts: { tsh?: string; env?: Record<string, string> } = {}) {
    this.home = join(dir, 'home');
    this.cwd = join(dir, 'cwd');
    this.extraEnv = opts.env ?? {};
    mkdirSync(join(this.home, '.ssh'), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.home, 'bin'), { recursive: true });
    mkdirSync(this.cwd, { recursive: true });
    if (opts.tsh) symlinkSync(opts.tsh, join(this.home, '.tsh'));
    const launcher = join(this.home, 'bin', 'postern');
    writeFileSync(launcher, `#!/bin/sh\nPOSTERN_FROM_SOURCE=1 exec '${process.execPath}' '${POSTERN_BIN}' "$@"\n`);
    chmodSync(launcher, 0o755);
    const ssh = join(this.home, 'bin', 'ssh');
    writeFileSync(ssh, '#!/bin/sh\nexec /usr/bin/ssh -F "$HOME/.ssh/config" "$@"\n');
    chmodSync(ssh, 0o755);
  }

  /** The environment lines run in, with `extra` on top. */
  env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    return {
      HOME: this.home, PATH: `${join(this.home, 'bin')}:/usr/bin:/bin`, SHELL: '/bin/bash', TERM: 'dumb', NO_COLOR: '1',
      LANG: 'C.UTF-8', ...this.extraEnv, ...extra,
    };
  }

  /**
   * Runs `line` with bash in a session of its own, with no controlling terminal (as under a
   * CI runner); stdin gets `input` and then ends.
   */
  run(line: string, opts: { input?: string; timeoutMs?: number; env?: Record<string, string | undefined>; wrap?: string[] } = {}): Promise<ShellRun> {
    return new Promise((resolve, reject) => {
      const argv = [...(opts.wrap ?? []), 'bash', '-c', line];
      const child = spawn(argv[0], argv.slice(1), { env: this.env(opts.env), cwd: this.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += String(d); });
      child.stderr.on('data', (d) => { stderr += String(d); });
      const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, opts.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input ?? '');
    });
  }

  /**
   * Starts `line` (a server: it runs until stopped) with bash in a session of its own, with
   * no terminal; `wrap` goes before bash (e.g. Netns.enter).
   */
  start(line: string, opts: { env?: Record<string, string | undefined>; wrap?: string[] } = {}): Background {
    const argv = [...(opts.wrap ?? []), 'bash', '-c', line];
    const child = spawn(argv[0], argv.slice(1), { env: this.env(opts.env), cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const signal = (sig: NodeJS.Signals): void => { try { process.kill(-child.pid!, sig); } catch { /* gone */ } };
    return {
      stdout: () => stdout,
      stderr: () => stderr,
      waitFor: async (needle, timeoutMs = 60_000) => {
        await waitFor(() => {
          if (typeof needle === 'string' ? stdout.includes(needle) : needle.test(stdout)) return true;
          if (child.exitCode !== null) throw new Error(`${line}\nexited with ${child.exitCode} before printing ${String(needle)}\n${stdout}\n${stderr.slice(-3000)}`);
          return false;
        }, { what: `${String(needle)} from: ${line}`, timeoutMs, intervalMs: 50, detail: () => `${stdout}\n${stderr.slice(-3000)}` });
      },
      stop: async () => {
        signal('SIGTERM');
        const timer = setTimeout(() => signal('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
  }

  /**
   * Runs `line` on a terminal of its own (script(1) gives it a pty as its controlling
   * terminal), answering `answers` in order, each once when its prompt shows.
   */
  terminal(line: string, opts: { answers?: Answer[]; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): TerminalRun {
    const child = spawn('script', ['-qfec', line, '/dev/null'], { env: this.env({ TERM: 'xterm', ...opts.env }), cwd: this.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    // The answers in order, each to a prompt shown after the one before was answered.
    const pending = [...(opts.answers ?? [])];
    let answeredAt = 0;
    const onData = (d: Buffer): void => {
      screen += d.toString();
      const next = pending[0];
      if (!next || !next.prompt.test(screen.slice(answeredAt))) return;
      pending.shift();
      answeredAt = screen.length;
      const shown = screen;
      void Promise.resolve(next.reply(shown)).then((text) => { if (child.exitCode === null) child.stdin.write(text); });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.stdin.on('error', () => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve(code); }));
    return {
      screen: () => screen,
      type: (text) => { child.stdin.write(text); },
      waitFor: async (needle, o = {}) => { await waitFor(() => {
        const seen = screen.slice(o.from ?? 0);
        return typeof needle === 'string' ? seen.includes(needle) : needle.test(seen);
      }, { what: `${String(needle)} on the terminal of: ${line}`, timeoutMs: o.timeoutMs ?? 60_000, intervalMs: 50, detail: () => screen.slice(-3000) }); },
      exited,
      kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); },
    };
  }
}
