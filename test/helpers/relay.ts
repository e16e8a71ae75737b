/**
 * For the relay tests: a deterministic byte stream that the client and the node can both
 * produce (AES-128-CTR keystream under a zero key: Node's cipher here, `openssl enc` on the
 * node), its sha256, the resident memory of a process, a slow reader's backpressure, and
 * single keys echoed.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import { waitFor } from './wait.ts';

const ZERO_HEX = '0'.repeat(32);

/** MiB each relay test moves each way: RELAY_TEST_MIB, `fallback` when unset. */
export function relayMib(fallback: number): number {
  const v = process.env.RELAY_TEST_MIB;
  const n = v ? Number(v) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`RELAY_TEST_MIB must be a whole number of MiB, not "${v}"`);
  return n;
}

/** `mib` MiB of the keystream, produced 1 MiB at a time as the consumer asks. */
export function keystream(mib: number): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  let left = mib;
  return new Readable({
    read() {
      if (left === 0) { this.push(null); return; }
      left--;
      this.push(cipher.update(zeros));
    },
  });
}

/** The sha256 (hex) of `mib` MiB of the keystream. */
export function keystreamSha256(mib: number): string {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  const h = createHash('sha256');
  for (let i = 0; i < mib; i++) h.update(cipher.update(zeros));
  return h.digest('hex');
}

/** The shell command that writes the same `mib` MiB on a node's stdout. */
export function keystreamCommand(mib: number): string {
  return `openssl enc -aes-128-ctr -K ${ZERO_HEX} -iv ${ZERO_HEX} -nosalt </dev/zero 2>/dev/null | head -c ${mib * 1048576}`;
}

/** VmRSS of a process, KiB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * Reads `s`'s stdout (a remote `cat /dev/zero`, which offers far more than is taken) at
 * 1 MiB/s and asserts that the proxy `pid` grows by less than `maxGrowthMiB` while 12 MiB
 * are read: without backpressure it would hold hundreds of MiB within seconds. Kills `s` at
 * the end.
 */
export async function assertSlowReaderKeepsRssFlat(pid: number, s: { child: { stdin: Writable; stdout: Readable; kill(signal: NodeJS.Signals): boolean }; stderr: () => string; exited: Promise<unknown> }, maxGrowthMiB = 48): Promise<void> {
  s.child.stdin.end();
  let got = 0;
  let budget = 1 << 20;
  s.child.stdout.on('data', (d: Buffer) => {
    got += d.length;
    budget -= d.length;
    if (budget <= 0) s.child.stdout.pause();
  });
  const tick = setInterval(() => { budget = 1 << 20; s.child.stdout.resume(); }, 1000);
  try {
    await waitFor(() => got >= 2 << 20, { what: 'the first 2 MiB', timeoutMs: 60_000, detail: () => `${got} bytes so far\n${s.stderr()}` });
    const base = rssKb(pid);
    let peak = base;
    const poll = setInterval(() => { peak = Math.max(peak, rssKb(pid)); }, 100);
    await waitFor(() => got >= 14 << 20, { what: '12 MiB more at 1 MiB/s', timeoutMs: 120_000, detail: () => `${got} bytes so far\n${s.stderr()}` });
    clearInterval(poll);
    const growthMiB = (peak - base) / 1024;
    assert.ok(growthMiB < maxGrowthMiB, `the proxy's RSS grew by ${growthMiB.toFixed(1)} MiB while the client read 12 MiB`);
  } finally {
    clearInterval(tick);
    s.child.kill('SIGKILL');
    await s.exited;
    s.child.stdout.destroy();
  }
}

/**
 * Types `keys` one byte at a time into `s`, a remote `echo ready; exec cat`: each byte must
 * come back before the next is sent (nothing held back for more input). Ends its stdin and
 * waits for it at the end.
 */
export async function assertEchoedOneByOne(s: { child: { stdin: Writable; stdout: Readable }; stderr: () => string; done: Promise<unknown> }, keys: string): Promise<void> {
  let out = '';
  s.child.stdout.on('data', (d) => { out += d; });
  try {
    await waitFor(() => out.includes('ready\n'), { what: 'the remote cat', timeoutMs: 60_000, detail: s.stderr });
    for (let i = 0; i < keys.length; i++) {
      s.child.stdin.write(keys[i]);
      // cat echoes what it read at once; the byte must come back with nothing sent after it.
      await waitFor(() => out.length >= 'ready\n'.length + i + 1, { what: `the echo of byte ${i} (${JSON.stringify(keys[i])})`, timeoutMs: 20_000, detail: () => `${JSON.stringify(out)}\n${s.stderr()}` });
    }
    assert.equal(out, `ready\n${keys}`);
  } finally {
    s.child.stdin.end();
    await s.done;
  }
}
