/**
 * 6. Web terminal echo: from a key press in headless Chromium to the echoed character
 * coming back, through the proxy's websocket terminal (wss), the SSH connection the proxy
 * opens to the node, the node's PTY and bash's line editor, and back. Measured in the page
 * with performance.now(), one key at a time (the next only after the echo), so each sample
 * is one full round trip. Beside it, the same websocket terminal driven from Node's `ws`
 * (the proxy's share without the browser's), and the same keystroke echo through OpenSSH's
 * own `ssh -tt` to the node, measured the same way from Node, as the floor of any path
 * through a PTY; and the browser's own floor: the same keys from the page over wss to a
 * websocket server in the bench's process that sends each message straight back.
 *
 * Each round opens a fresh session on every path, types WARMUP_KEYS keys that are not
 * counted (the first keys of a session run code paths for the first time, on every side),
 * clears the line, then types the measured keys. The paths take turns within a round, and
 * the target is judged on the median over rounds of each path's p99.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import type { Browser, Page } from 'playwright-core';
import type { BenchEnv } from './setup.ts';
import type { PathSamples } from './measure.ts';
import { oathtoolCode, LOCAL_USER } from '../test/helpers/openssh.ts';
import { TEST_PASSWORD } from '../test/helpers/cluster.ts';
import { SESSION_COOKIE } from '../src/proxy/web-auth.ts';

/** One path's keys: every measured sample, and the p99 of each round. */
export interface EchoSamples extends PathSamples {
  roundP99?: number[];
}

/** What the echo measurement found. */
export interface EchoResult {
  /** Key to echo in Chromium through the web terminal (ms). */
  web: EchoSamples;
  /** Key to echo through the same websocket terminal from Node's `ws` (ms): the proxy without the browser. */
  wsNode?: EchoSamples;
  /** Key to echo through `ssh -tt` directly to the node (ms), the PTY floor. */
  ssh: EchoSamples;
  /** Key to echo in Chromium over wss to an echo server in the bench's process (ms): the browser's floor. */
  browserFloor?: EchoSamples;
}

/** Chromium as Debian installs it; the bench says so instead of measuring when it is missing. */
export const CHROMIUM = process.env.POSTERN_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Keys typed at the start of every session before the measured ones. */
export const WARMUP_KEYS = 20;

/** A key is typed every this many ms after the last echo (BENCH_ECHO_GAP_MS; 0: at once). */
const GAP_MS = Number(process.env.BENCH_ECHO_GAP_MS ?? 0);

/** How a typing loop is told what to do: the same plan in the page and in Node. */
interface Plan { n: number; warmup: number; gap: number }

/** The p99 of one round's values. */
function p99(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.ceil(0.99 * v.length) - 1)] : NaN;
}

function addRound(into: EchoSamples, round: PathSamples): void {
  into.values.push(...round.values);
  into.failures.push(...round.failures);
  if (round.values.length) (into.roundP99 ??= []).push(p99(round.values));
}

/** Measures `rounds` × `samples` key echoes on each path; the web user logs in with a fresh TOTP code. */
export async function webEcho(env: BenchEnv, samples: number, rounds: number, log: (s: string) => void): Promise<EchoResult> {
  const result: Required<EchoResult> = { web: { values: [], failures: [] }, wsNode: { values: [], failures: [] }, ssh: { values: [], failures: [] }, browserFloor: { values: [], failures: [] } };
  const plan: Plan = { n: samples, warmup: WARMUP_KEYS, gap: GAP_MS };
  if (!existsSync(CHROMIUM)) result.web.failures.push(`no Chromium at ${CHROMIUM} (apt-get install chromium, or npm test's pretest installs it)`);
  if (!env.webUser) result.web.failures.push('no web user was set up');
  const { chromium } = await import('playwright-core');
  const browser = result.web.failures.length ? undefined : await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const floor = browser ? await echoServer() : undefined;
  try {
    const page = browser ? await webLogin(env, browser, result.web) : undefined;
    const cookie = page ? (await page.context().cookies()).find((c) => c.name === SESSION_COOKIE)?.value : undefined;
    for (let r = 1; r <= rounds; r++) {
      log(`  web echo, round ${r}/${rounds}: ${samples} keys each (after ${WARMUP_KEYS} not counted) through the web terminal in Chromium, the same websocket from Node, and ssh -tt`);
      if (page) addRound(result.web, await pageEcho(page, `wss://${env.cluster.serve.web}/webapi/terminal?${terminalQuery(env)}`, plan));
      if (page && floor) addRound(result.browserFloor, await pageEcho(page, floor.url, plan));
      if (cookie) addRound(result.wsNode, await nodeWsEcho(env, cookie, plan));
      else result.wsNode.failures.push('no web session (see the web path)');
      addRound(result.ssh, await sshEcho(env, plan));
    }
  } finally {
    await browser?.close();
    floor?.close();
  }
  return result;
}

/** Opens the proxy's origin in a page and logs the web user in; undefined (and a failure) if that fails. */
async function webLogin(env: BenchEnv, browser: Browser, into: PathSamples): Promise<Page | undefined> {
  const web = env.webUser!;
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`https://${env.cluster.serve.web}/webapi/ping`);
  const login = await page.evaluate(async ({ user, password, otp }) => {
    const r = await fetch('/webapi/sessions/web', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password, otp }) });
    return { status: r.status, body: await r.text() };
  }, { user: web.name, password: TEST_PASSWORD, otp: oathtoolCode(web.secret, 0) });
  if (login.status === 200) return page;
  into.failures.push(`web login failed: ${login.status} ${login.body}`);
  return undefined;
}

function terminalQuery(env: BenchEnv): string {
  return `node=${encodeURIComponent(env.nodes[0].name)}&login=${encodeURIComponent(env.login)}&cols=120&rows=40`;
}

/**
 * A websocket server over TLS that sends back every message, for the browser's floor: what
 * a key costs in Chromium with nothing behind the socket (a self-signed certificate from
 * `openssl`, which the bench's browser context accepts).
 */
async function echoServer(): Promise<{ url: string; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-echo-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
  rmSync(dir, { recursive: true, force: true });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (d: Buffer, binary: boolean) => ws.send(d, { binary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `wss://127.0.0.1:${port}/`, close: () => { wss.close(); server.close(); server.closeAllConnections(); } };
}

/** What runs in the page: a WebSocket to `url`, the keys typed by `type` (typeKeys, passed as source). */
async function pageSession({ url, plan }: { url: string; plan: Plan }, type: typeof typeKeys): Promise<PathSamples> {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const text: { value: string; waiter?: () => void } = { value: '' };
  const dec = new TextDecoder();
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') return;
    text.value += dec.decode(ev.data as ArrayBuffer, { stream: true });
    text.waiter?.();
  };
  await new Promise<void>((resolve, reject) => { ws.onopen = () => resolve(); ws.onerror = () => reject(new Error('websocket failed')); });
  const enc = new TextEncoder();
  const send = (s: string): void => ws.send(enc.encode(s));
  try {
    return await type(plan, send, text);
  } finally {
    send('\u0015exit\r');
    ws.close();
  }
}

/**
 * One session's keys typed in the page, through the browser's own WebSocket to `url`. Both
 * functions go to the page as their source (Node has stripped their types; neither uses
 * anything from this module's scope), so the page types exactly as the Node paths do.
 */
async function pageEcho(page: Page, url: string, plan: Plan): Promise<PathSamples> {
  const script = `(${pageSession.toString()})(${JSON.stringify({ url, plan })}, ${typeKeys.toString()})`;
  return (page.evaluate(script) as Promise<PathSamples>).catch((err: Error) => ({ values: [], failures: [err.message.split('\n')[0]] }));
}

/**
 * Types the plan's keys through `send`, one at a time: WARMUP_KEYS not counted, then a ^U
 * (so the line never wraps; again every 40 keys) and the measured ones, each sample the time
 * until the key shows in `text`.
 */
async function typeKeys(plan: Plan, send: (s: string) => void, text: { value: string; waiter?: () => void }): Promise<PathSamples> {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const quiet = async (ms: number): Promise<void> => {
    for (let before = -1; before !== text.value.length;) { before = text.value.length; await sleep(ms); }
  };
  const values: number[] = [];
  const failures: string[] = [];
  await quiet(800);
  for (let i = 0; i < plan.warmup + plan.n; i++) {
    const ch = String.fromCharCode(97 + (i % 26));
    if (i === plan.warmup || (i > plan.warmup && (i - plan.warmup) % 40 === 0)) { send('\u0015'); await quiet(150); }
    if (plan.gap > 0) await sleep(plan.gap);
    text.value = '';
    const t0 = performance.now();
    const got = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      text.waiter = () => { if (text.value.includes(ch)) { clearTimeout(timer); resolve(true); } };
    });
    send(ch);
    const ok = await got;
    if (i < plan.warmup) continue;
    if (ok) values.push(performance.now() - t0);
    else failures.push(`key ${i}: no echo within 5 s`);
  }
  return { values, failures };
}

/** The web terminal's websocket from Node (the `ws` package), with the browser's session cookie. */
async function nodeWsEcho(env: BenchEnv, cookie: string, plan: Plan): Promise<PathSamples> {
  const ws = new WebSocket(`wss://${env.cluster.serve.web}/webapi/terminal?${terminalQuery(env)}`, { rejectUnauthorized: false, headers: { origin: `https://${env.cluster.serve.web}`, cookie: `${SESSION_COOKIE}=${cookie}` } });
  const text: { value: string; waiter?: () => void } = { value: '' };
  ws.on('message', (d: Buffer, binary: boolean) => { if (binary) { text.value += d.toString('utf8'); text.waiter?.(); } });
  try {
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    return await typeKeys(plan, (s) => ws.send(Buffer.from(s)), text);
  } catch (err) {
    return { values: [], failures: [(err as Error).message] };
  } finally {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.from('\u0015exit\r'));
    ws.close();
  }
}

/** The same echo through OpenSSH straight to the node's sshd. */
async function sshEcho(env: BenchEnv, plan: Plan): Promise<PathSamples> {
  const child = spawn('ssh', ['-F', env.sshConfig, '-tt', `${LOCAL_USER}@bench-node1`, 'bash', '--norc', '--noprofile', '-i'], { stdio: ['pipe', 'pipe', 'pipe'], env: env.sshEnv });
  const text: { value: string; waiter?: () => void } = { value: '' };
  child.stdout.on('data', (d: Buffer) => { text.value += d.toString('utf8'); text.waiter?.(); });
  try {
    return await typeKeys(plan, (s) => child.stdin.write(s), text);
  } finally {
    child.stdin.end('\u0015exit\r');
    setTimeout(() => child.kill(), 2000).unref();
  }
}
