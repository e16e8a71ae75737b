/**
 * 6. Web terminal echo: from a key press in headless Chromium to the echoed character
 * coming back, through the proxy's websocket terminal (wss), the SSH connection the proxy
 * opens to the node, the node's PTY and bash's line editor, and back. Measured in the page
 * with performance.now(), one key at a time (the next only after the echo), so each sample
 * is one full round trip. Beside it, the same keystroke echo through OpenSSH's own `ssh -tt`
 * to the node, measured the same way from Node, as the floor of any path through a PTY.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { BenchEnv } from './setup.ts';
import type { PathSamples } from './measure.ts';
import { oathtoolCode, LOCAL_USER } from '../test/helpers/openssh.ts';
import { TEST_PASSWORD } from '../test/helpers/cluster.ts';

/** What the echo measurement found. */
export interface EchoResult {
  /** Key to echo in Chromium through the web terminal (ms). */
  web: PathSamples;
  /** Key to echo through `ssh -tt` directly to the node (ms), the PTY floor. */
  ssh: PathSamples;
}

/** Chromium as Debian installs it; the bench says so instead of measuring when it is missing. */
export const CHROMIUM = process.env.POSTERN_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Measures `samples` key echoes each way; the web user logs in with a fresh TOTP code. */
export async function webEcho(env: BenchEnv, samples: number, log: (s: string) => void): Promise<EchoResult> {
  const result: EchoResult = { web: { values: [], failures: [] }, ssh: { values: [], failures: [] } };
  if (!existsSync(CHROMIUM)) {
    result.web.failures.push(`no Chromium at ${CHROMIUM} (apt-get install chromium, or npm test's pretest installs it)`);
    return result;
  }
  const web = env.webUser;
  if (!web) {
    result.web.failures.push('no web user was set up');
    return result;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const origin = `https://${env.cluster.serve.web}`;
    await page.goto(`${origin}/webapi/ping`);
    const otp = oathtoolCode(web.secret, 0);
    const login = await page.evaluate(async ({ user, password, otp }) => {
      const r = await fetch('/webapi/sessions/web', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password, otp }) });
      return { status: r.status, body: await r.text() };
    }, { user: web.name, password: TEST_PASSWORD, otp });
    if (login.status !== 200) {
      result.web.failures.push(`web login failed: ${login.status} ${login.body}`);
      return result;
    }
    log(`  web echo: ${samples} keys through the web terminal`);
    const out = await page.evaluate(async ({ node, login, n }) => {
      const ws = new WebSocket(`wss://${location.host}/webapi/terminal?node=${encodeURIComponent(node)}&login=${encodeURIComponent(login)}&cols=120&rows=40`);
      ws.binaryType = 'arraybuffer';
      let text = '';
      let waiter: (() => void) | undefined;
      const dec = new TextDecoder();
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') return;
        text += dec.decode(ev.data as ArrayBuffer, { stream: true });
        waiter?.();
      };
      await new Promise<void>((resolve, reject) => { ws.onopen = () => resolve(); ws.onerror = () => reject(new Error('websocket failed')); });
      const quiet = async (ms: number): Promise<void> => {
        for (;;) {
          const before = text.length;
          await new Promise((r) => setTimeout(r, ms));
          if (text.length === before) return;
        }
      };
      await quiet(800);
      const enc = new TextEncoder();
      const values: number[] = [];
      const failures: string[] = [];
      for (let i = 0; i < n; i++) {
        const ch = String.fromCharCode(97 + (i % 26));
        if (i > 0 && i % 40 === 0) {
          ws.send(enc.encode('\u0015')); // ^U: clear the line so it never wraps
          await quiet(150);
        }
        text = '';
        const t0 = performance.now();
        const got = new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5000);
          waiter = () => { if (text.includes(ch)) { clearTimeout(timer); resolve(true); } };
        });
        ws.send(enc.encode(ch));
        if (await got) values.push(performance.now() - t0);
        else failures.push(`key ${i}: no echo within 5 s`);
      }
      ws.send(enc.encode('\u0015exit\r'));
      ws.close();
      return { values, failures };
    }, { node: env.nodes[0].name, login: env.login, n: samples });
    result.web = out;
  } catch (err) {
    result.web.failures.push((err as Error).message.split('\n')[0]);
  } finally {
    await browser.close();
  }
  log(`  web echo: ${samples} keys through ssh -tt to the node`);
  result.ssh = await sshEcho(env, samples);
  return result;
}

/** The same echo through OpenSSH straight to the node's sshd. */
async function sshEcho(env: BenchEnv, n: number): Promise<PathSamples> {
  const child = spawn('ssh', ['-F', env.sshConfig, '-tt', `${LOCAL_USER}@bench-node1`, 'bash', '--norc', '--noprofile', '-i'], { stdio: ['pipe', 'pipe', 'pipe'], env: env.sshEnv });
  let text = '';
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => { text += d.toString('utf8'); waiter?.(); });
  const quiet = async (ms: number): Promise<void> => {
    for (;;) {
      const before = text.length;
      await new Promise((r) => setTimeout(r, ms));
      if (text.length === before) return;
    }
  };
  const values: number[] = [];
  const failures: string[] = [];
  try {
    await quiet(800);
    for (let i = 0; i < n; i++) {
      const ch = String.fromCharCode(97 + (i % 26));
      if (i > 0 && i % 40 === 0) { child.stdin.write('\u0015'); await quiet(150); }
      text = '';
      const t0 = performance.now();
      const got = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        waiter = () => { if (text.includes(ch)) { clearTimeout(timer); resolve(true); } };
      });
      child.stdin.write(ch);
      if (await got) values.push(performance.now() - t0);
      else failures.push(`key ${i}: no echo within 5 s`);
    }
  } finally {
    child.stdin.end('\u0015exit\r');
    setTimeout(() => child.kill(), 2000).unref();
  }
  return { values, failures };
}
