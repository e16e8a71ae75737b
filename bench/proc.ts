/**
 * Processes for the benchmark: timed runs, the time to a first matching byte, and memory
 * and socket counts read from /proc. Every wait has a deadline.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** A command line with its environment. */
export interface Cmd {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** What a timed run left. */
export interface Timed {
  ms: number;
  code: number | null;
  stderr: string;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Runs a command to its end and measures its wall time; stdin is an fd, or /dev/null. */
export function runTimed(c: Cmd, opts: { stdinFd?: number; input?: string; timeoutMs: number }): Promise<Timed> {
  return new Promise((resolve) => {
    const stdio: StdioOptions = [opts.input !== undefined ? 'pipe' : opts.stdinFd ?? 'ignore', 'ignore', 'pipe'];
    const t0 = now();
    const child = spawn(c.cmd, c.args, { env: c.env, stdio });
    let stderr = '';
    child.stderr!.on('data', (d) => { if (stderr.length < 8192) stderr += d; });
    const timer = setTimeout(() => { stderr += `\n[bench] killed after ${opts.timeoutMs} ms`; child.kill('SIGKILL'); }, opts.timeoutMs);
    child.on('error', (err) => { stderr += String(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ ms: now() - t0, code, stderr }); });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/**
 * Starts a command with its stdin held open and measures the time until its stdout has
 * carried `match` (e.g. the node's `SSH-2.0-` banner); then ends it.
 */
export function timeToFirstBytes(c: Cmd, match: string, timeoutMs: number): Promise<{ ms: number; ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = now();
    const child = spawn(c.cmd, c.args, { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let ms = Number.NaN;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdin.destroy();
      child.kill('SIGTERM');
    };
    const timer = setTimeout(finish, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      if (done) return;
      out += d.toString('latin1');
      if (out.includes(match)) { ms = now() - t0; finish(); }
    });
    child.stderr.on('data', (d) => { if (stderr.length < 8192) stderr += d; });
    child.on('error', (err) => { stderr += String(err); finish(); });
    child.on('close', () => { finish(); resolve({ ms, ok: Number.isFinite(ms), stderr }); });
  });
}

/** A long-lived session: started, then proven alive by an echo, then ended. */
export interface HeldSession {
  child: ChildProcess;
  /** Resolves true once the remote side printed `marker`, false on exit or deadline. */
  up: Promise<boolean>;
  /** Sends a line and resolves true when the remote `cat` echoed it back in time. */
  ping(line: string, timeoutMs: number): Promise<boolean>;
  /** Ends stdin (the remote cat exits), kills after the deadline; resolves on exit. */
  close(timeoutMs: number): Promise<void>;
  exited(): boolean;
}

/** Starts `c`, whose remote command must print `marker` and then echo stdin (`echo M; exec cat`). */
export function holdSession(c: Cmd, marker: string, upTimeoutMs: number): HeldSession {
  const child = spawn(c.cmd, c.args, { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let gone = false;
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); for (const w of [...waiters]) w(); });
  child.stderr.resume();
  child.stdin.on('error', () => {});
  const exit = new Promise<void>((resolve) => child.once('close', () => { gone = true; for (const w of [...waiters]) w(); resolve(); }));
  child.on('error', () => {});
  const waitFor = (text: string, timeoutMs: number): Promise<boolean> => new Promise((resolve) => {
    const check = (): void => {
      if (out.includes(text)) { cleanup(); resolve(true); } else if (gone) { cleanup(); resolve(false); }
    };
    const timer = setTimeout(() => { cleanup(); resolve(false); }, timeoutMs);
    const cleanup = (): void => { clearTimeout(timer); waiters.delete(check); };
    waiters.add(check);
    check();
  });
  return {
    child,
    up: waitFor(marker, upTimeoutMs),
    ping(line, timeoutMs) {
      if (gone) return Promise.resolve(false);
      child.stdin.write(`${line}\n`);
      return waitFor(line, timeoutMs);
    },
    async close(timeoutMs) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
    },
    exited: () => gone,
  };
}

/** A field of /proc/PID/status in KiB (VmRSS, VmHWM, …); NaN when the process is gone. */
export function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** RSS and PSS of a process in KiB, from /proc/PID/smaps_rollup. */
export function rollupKb(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { rss: get('Rss'), pss: get('Pss') };
  } catch {
    return { rss: Number.NaN, pss: Number.NaN };
  }
}

/** Every descendant of a process (children, their children, …), from /proc/PID/stat. */
export function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  let frontier = new Set([root]);
  for (let depth = 0; depth < 16 && frontier.size; depth++) {
    const next = new Set<number>();
    for (const [pid, ppid] of parentOf) if (frontier.has(ppid)) next.add(pid);
    out.push(...next);
    frontier = next;
  }
  return out;
}

/** Sum of RSS and PSS (KiB) over processes. */
export function sumRollup(pids: number[]): { rss: number; pss: number; count: number } {
  let rss = 0;
  let pss = 0;
  let count = 0;
  for (const pid of pids) {
    const r = rollupKb(pid);
    if (!Number.isFinite(r.rss)) continue;
    rss += r.rss;
    pss += r.pss;
    count++;
  }
  return { rss, pss, count };
}

/** CPU time of a process in ms (user + system), with its reaped children's when asked, from /proc/PID/stat. */
export function cpuMs(pid: number, withReapedChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the name start at state (3): utime 14, stime 15, cutime 16, cstime 17; clock ticks of 10 ms.
    const ticks = Number(f[11]) + Number(f[12]) + (withReapedChildren ? Number(f[13]) + Number(f[14]) : 0);
    return ticks * 10;
  } catch {
    return Number.NaN;
  }
}
