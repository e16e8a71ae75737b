/** Reading how the parent ssh takes keys (src/client/parent-ssh.ts) from real `ssh -G` output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { parseSshG, parentSshKeys } from '../../src/client/parent-ssh.ts';

const sshG = (args: string[]): string => execFileSync('ssh', ['-G', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

test('ssh -G: IdentitiesOnly and IdentityAgent as ssh would use them for this host', () => {
  assert.deepEqual(parseSshG(sshG(['u@h.example'])), { identitiesOnly: false });
  assert.deepEqual(parseSshG(sshG(['-o', 'IdentitiesOnly=yes', 'u@h.example', 'echo', 'x'])), { identitiesOnly: true });
  assert.deepEqual(parseSshG(sshG(['-o', 'IdentityAgent=none', 'u@h.example'])), { identitiesOnly: false, identityAgent: 'none' });
  assert.deepEqual(parseSshG(sshG(['-o', 'IdentityAgent=/tmp/agent.sock', 'u@h.example'])), { identitiesOnly: false, identityAgent: '/tmp/agent.sock' });
});

test('a parent that is not ssh: cannot tell', () => {
  // This test's parent is npm or node, not ssh.
  assert.equal(parentSshKeys(process.ppid, process.env), undefined);
  assert.equal(parentSshKeys(2 ** 30, process.env), undefined);
});
