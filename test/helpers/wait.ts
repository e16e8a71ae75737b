/**
 * Waiting in tests: poll a condition until it holds or a deadline passes, then fail saying
 * what was awaited and what was last seen. Never a fixed sleep before an assertion: a sleep
 * is too short on a loaded machine and too long everywhere else.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How long and how often `waitFor` polls, and what it waits for (for the error). */
export interface WaitOptions {
  /** What is awaited, as the error should name it: "the agent's socket". */
  what: string;
  /** Deadline from the first check; 30 s unless told. */
  timeoutMs?: number;
  /** Pause between checks; 50 ms unless told. */
  intervalMs?: number;
  /** More to put in the error on timeout (a server's log, the output so far). */
  detail?: () => string;
}

/**
 * Calls `cond` until it returns a value other than false, undefined or null, and returns that
 * value. A throw from `cond` ends the wait at once (a process that exited will not start);
 * a condition that may fail on the way catches inside itself.
 */
export async function waitFor<T>(cond: () => T | undefined | null | false | Promise<T | undefined | null | false>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v !== false && v !== undefined && v !== null) return v;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}${opts.detail ? `\n${opts.detail()}` : ''}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

/** Waits until the text `get()` returns holds `needle`; the error shows the end of the text. */
export async function waitForText(get: () => string, needle: string | RegExp, timeoutMs = 60_000): Promise<void> {
  await waitFor(() => (typeof needle === 'string' ? get().includes(needle) : needle.test(get())), {
    what: String(needle), timeoutMs, intervalMs: 100, detail: () => `got:\n${get().slice(-2000)}`,
  });
}
