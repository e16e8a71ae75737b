/**
 * Asking the user: prompts only on a terminal; without one, a clear error that names the
 * flag to use instead. Ctrl-C at a prompt cancels (exit 130).
 */
import { password as passwordPrompt, input as inputPrompt, confirm as confirmPrompt } from '@inquirer/prompts';
import type { Deps } from './deps.ts';
import { CancelledError, UsageError } from '../core/errors.ts';

/** True when we may prompt. */
export function canPrompt(deps: Deps): boolean {
  return Boolean(deps.io.stdin.isTTY && deps.io.stderr.isTTY);
}

async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if ((err as Error).name === 'ExitPromptError' || (err as Error).name === 'AbortPromptError') throw new CancelledError();
    throw err;
  }
}

/** Asks for a secret, or fails with a hint naming `flag`. */
export async function askSecret(deps: Deps, message: string, flag: string): Promise<string> {
  if (!canPrompt(deps)) throw new UsageError(`${message.toLowerCase()} is needed and there is no terminal to ask on`, { hint: `Pass it with ${flag}` });
  return guard(passwordPrompt({ message, mask: '*' }, { input: deps.io.stdin, output: deps.io.stderr }));
}

/** Asks for text, or fails with a hint naming `flag`. */
export async function askText(deps: Deps, message: string, flag: string, validate?: (v: string) => true | string): Promise<string> {
  if (!canPrompt(deps)) throw new UsageError(`${message.toLowerCase()} is needed and there is no terminal to ask on`, { hint: `Pass it with ${flag}` });
  return guard(inputPrompt({ message, ...(validate ? { validate } : {}) }, { input: deps.io.stdin, output: deps.io.stderr }));
}

/** Asks yes or no; without a terminal answers `fallback`. */
export async function askConfirm(deps: Deps, message: string, fallback: boolean): Promise<boolean> {
  if (!canPrompt(deps)) return fallback;
  return guard(confirmPrompt({ message, default: fallback }, { input: deps.io.stdin, output: deps.io.stderr }));
}

/** Reads a secret from stdin (`--password-stdin`): the first line, without its newline. */
export async function readSecretStdin(deps: Deps): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of deps.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
  const text = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!text) throw new UsageError('--password-stdin was given but standard input was empty');
  return text;
}
