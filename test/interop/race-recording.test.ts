/**
 * By repetition: scp over SFTP through the recording proxy must exit 0 every
 * time, with the file intact. The node's exit-status comes after its EOF; a relay that ends
 * the client's channel on that EOF loses the status about a quarter of the time, so one
 * lucky pass proves nothing: 30 runs, three at a time, with a node whose sftp server exits
 * a moment after closing its output (without the fix, every run fails). The ssh-audit tests
 * (ssh-audit-suite.ts) share this file's cluster.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Interop, run, sha256, LOCAL_USER } from './harness.ts';
import { sshAuditSuite } from './ssh-audit-suite.ts';

// The node's sftp server closes its output, then exits a moment later, as a loaded node
// may: its EOF then comes well before its exit-status, the window the race needs.
const it = new Interop('recording', { sftpSubsystem: '/usr/lib/openssh/sftp-server; exec >&- 2>&-; sleep 0.2' });
before(async () => { await it.start(); });
after(async () => { await it.stop(); });

test('30 scp (SFTP) uploads through the recording proxy: exit status 0 and the same sha256 every time', async () => {
  const failures: string[] = [];
  const one = async (i: number): Promise<void> => {
    const dest = join(it.c.work, `race-${i}.bin`);
    const r = await run('scp', ['-q', '-F', it.sshConfig, '-A', '-s', ...it.jump, it.file, `${LOCAL_USER}@web1:${dest}`], { env: it.env() });
    if (r.status !== 0) failures.push(`run ${i}: exit ${r.status}: ${r.stderr.trim()}`);
    else if (sha256(dest) !== it.fileSum) failures.push(`run ${i}: sha256 differs`);
  };
  for (let i = 0; i < 30; i += 3) await Promise.all([one(i), one(i + 1), one(i + 2)]);
  assert.deepEqual(failures, [], it.tail());
  await it.expectNodeEvents(30);
});

// The protocol surface (item 5) on the same cluster.
sshAuditSuite(it);
