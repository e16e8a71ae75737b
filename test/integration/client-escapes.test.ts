/**
 * OpenSSH's escapes in `postern ssh` on a real terminal (util-linux `script` gives it a
 * PTY; what we write is typed on it) against a real sshd node: `~?` lists the escapes,
 * `~~` sends one `~`, a `~` inside a line is sent as is, `~.` after Enter disconnects at
 * once (exit 255, as ssh) even while a command runs; `-e %` moves the escape, `-e none`
 * makes the session transparent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { TestCluster } from '../helpers/cluster.ts';
import { onTty, POSTERN_BIN } from '../helpers/cli.ts';
import type { OnTty } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { waitForText as until } from '../helpers/wait.ts';

const c = new TestCluster();
let alice: string;

/** `postern ssh ARGS` on a terminal; its screen so far and its exit status. */
function sshOnTty(args: string): OnTty {
  return onTty(`env TSH_HOME=${alice} POSTERN_FROM_SOURCE=1 NO_COLOR=1 ${process.execPath} ${POSTERN_BIN} ssh ${args}`);
}

before(async () => {
  await c.start();
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  await c.node('web1', 'env=prod');
});

after(async () => {
  await c.stop();
});

test('postern ssh on a terminal: ~? lists the escapes, ~~ sends one ~, ~ inside a line is sent, ~. disconnects at once with 255', { skip: !existsSync('/usr/bin/script') && 'no /usr/bin/script (bsdutils)' }, async () => {
  const s = sshOnTty(`${LOCAL_USER}@web1`);
  try {
    s.proc.stdin.write('echo ready-$((1+2))\r');
    await until(s.out, 'ready-3');
    // A ~ inside a line reaches the shell.
    s.proc.stdin.write('echo a~b-$((5+5))\r');
    await until(s.out, 'a~b-10');
    // ~? right after Enter: the list, and nothing reaches the shell.
    s.proc.stdin.write('~?');
    // (The shell's prompt may come after the list: the test types without waiting for it.)
    await until(s.out, /(# |\n)~\?\r*\nSupported escape sequences:/);
    assert.match(s.out(), / ~\.\s+- disconnect/);
    assert.match(s.out(), / ~~\s+- send the escape character/);
    // ~~ at a line start sends one ~: the shell's line starts with a single ~ (it runs the
    // home directory, which fails, then the echo).
    s.proc.stdin.write('~~; echo tilde-$((3*3))\r');
    await until(s.out, 'tilde-9');
    assert.match(s.out(), /(# |\n)~; echo tilde-\$\(\(3\*3\)\)/);
    assert.doesNotMatch(s.out(), /~~; echo/);
    // ~. after Enter, while a command runs: disconnects now, 255, as ssh.
    s.proc.stdin.write('echo slept-$((4+4)); sleep 600\r');
    await until(s.out, 'slept-8');
    const t0 = Date.now();
    s.proc.stdin.write('~.');
    assert.equal(await s.exit, 255, s.out());
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    assert.match(s.out(), /Connection to web1 closed\./);
  } finally {
    s.proc.kill();
  }
});

test('postern ssh -e: another escape character (%), or none (~. reaches the shell)', { skip: !existsSync('/usr/bin/script') && 'no /usr/bin/script (bsdutils)' }, async () => {
  const pct = sshOnTty(`-e % ${LOCAL_USER}@web1`);
  try {
    pct.proc.stdin.write('echo ready-$((2+2))\r');
    await until(pct.out, 'ready-4');
    // ~. is an ordinary line now: the shell runs it (no such command) and the session goes on.
    pct.proc.stdin.write('~.\r');
    pct.proc.stdin.write('echo after-$((6+1))\r');
    await until(pct.out, 'after-7');
    pct.proc.stdin.write('%?');
    await until(pct.out, /%\.\s+- disconnect/);
    pct.proc.stdin.write('%.');
    assert.equal(await pct.exit, 255, pct.out());
  } finally {
    pct.proc.kill();
  }

  const none = sshOnTty(`-e none ${LOCAL_USER}@web1`);
  try {
    none.proc.stdin.write('echo ready-$((3+2))\r');
    await until(none.out, 'ready-5');
    none.proc.stdin.write('~.\r~?\recho none-$((8+1))\r');
    await until(none.out, 'none-9');
    assert.doesNotMatch(none.out(), /Supported escape sequences/);
    none.proc.stdin.write('exit 7\r');
    assert.equal(await none.exit, 7, none.out());
  } finally {
    none.proc.kill();
  }
});
