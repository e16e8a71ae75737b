/**
 * The README's and `--help`'s examples, as written, against a real cluster (`postern
 * serve`, real sshd nodes, real OpenSSH): the code block of README's "Reaching nodes" and
 * the Examples of `postern ssh --help` and `postern config --help`, run line by line by
 * bash from a user's shell (HOME with ~/.tsh and ~/.ssh, `postern` on PATH, nothing of the
 * project's environment). Only the proxy's address and ports, the cluster's name, the
 * logins and the local port of -L are replaced. `ssh` is OpenSSH's with `-F ~/.ssh/config`
 * (it takes its home from the passwd entry, not $HOME, and the tests must not touch root's).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { UserShell, helpExamples as allHelpExamples, readmeBlock } from '../helpers/readme.ts';
import { freePort } from '../interop/harness.ts';

const c = new TestCluster();
let shell: UserShell;

/** The command lines of a command's `--help` Examples. */
async function helpExamples(args: string[]): Promise<string[]> {
  const lines = (await allHelpExamples()).filter((e) => e.command === args.join(' ')).map((e) => e.text);
  assert.ok(lines.length > 0, `${args.join(' ')} --help has Examples`);
  return lines;
}

/** Puts this cluster into an example: addresses, ports, cluster name, logins. */
async function localize(line: string): Promise<string> {
  const web = c.serve.web;
  let out = line
    .replace(/proxy\.example\.com:3023/g, `127.0.0.1:${c.sshPort}`)
    .replace(/proxy\.example\.com(:3080)?/g, web)
    .replace(/<cluster>|example\.com/g, 'test.example')
    .replace(/\b(ubuntu|root)@/g, `${LOCAL_USER}@`);
  const l = /-L (\d+):/.exec(out);
  if (l) out = out.replace(`-L ${l[1]}:`, `-L ${await freePort()}:`);
  return out;
}

/** What each example must show besides exit 0 (or its own exit status). */
function expectations(line: string): { code?: number; stdout?: RegExp } {
  if (/'exit 3'; echo \$\?/.test(line)) return { stdout: /^3\n$/ };
  if (/ls env=prod --format json/.test(line)) return { stdout: /^\[\n\s*\{\n\s*"name": "web1"/ };
  // Nodes run in parallel: their lines come in the order they arrive.
  if (/hostname$/.test(line)) return { stdout: /^(\[web[12]\] \S+\n){2}$/ };
  if (/^postern ls/.test(line)) return { stdout: /web1/ };
  if (/'uptime'/.test(line)) return { stdout: /load average/ };
  return {};
}

before(async () => {
  await c.start();
  const alice = await c.user('alice', `${LOCAL_USER},deploy`, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  await c.node('web1', 'env=prod');
  await c.node('web2', 'env=prod,team=web');
  shell = new UserShell(c.work, { tsh: alice });
});

after(async () => {
  await c.stop();
});

async function runExamples(lines: string[]): Promise<void> {
  assert.ok(lines.length > 0);
  for (const written of lines) {
    const line = await localize(written);
    const r = await shell.run(line, { timeoutMs: 60_000 });
    const want = expectations(written);
    assert.equal(r.code, want.code ?? 0, `${written}\n  ran as: ${line}\n${r.stdout}\n${r.stderr}`);
    if (want.stdout) assert.match(r.stdout, want.stdout, `${written}\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /Host key verification failed|Permission denied|REMOTE HOST IDENTIFICATION/, `${written}\n${r.stderr}`);
  }
}

test('README "Reaching nodes": every line runs as written, incl. postern config >> ~/.ssh/config, ssh NODE.<cluster> and ssh -J', async () => {
  const lines = readmeBlock('Reaching nodes').map((l) => l.command);
  assert.ok(lines.some((l) => l.startsWith('ssh -J ')), lines.join('\n'));
  await runExamples(lines);
});

test('postern ssh --help and postern config --help: every example runs as written', async () => {
  const ssh = await helpExamples(['ssh']);
  // -N forwards until Ctrl-C: run it with a deadline and see it forwarding instead.
  const forwardOnly = ssh.filter((l) => / -N /.test(l));
  await runExamples(ssh.filter((l) => !forwardOnly.includes(l)));
  assert.equal(forwardOnly.length, 1);
  const config = (await helpExamples(['config'])).filter((l) => !l.startsWith('postern config >>'));
  await runExamples(config);
});
