// The run-time check that the ssh2 in use carries every Postern patch: it passes on the
// installed tree, it names the patch whose probe fails (injected probes: ssh2 itself is
// left alone), and there is exactly one probe per file in patches/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { PosternError } from '../../src/core/errors.ts';
import {
  assertSsh2Patched,
  ERR_SSH2_UNPATCHED,
  missingSsh2Patches,
  SSH2_PATCH_PROBES,
  SSH2_PATCHED_VERSION,
  type Ssh2PatchProbe,
} from '../../src/ssh/ssh2-capabilities.ts';
import ssh2Package from 'ssh2/package.json' with { type: 'json' };
import projectPackage from '../../package.json' with { type: 'json' };

const patchDir = new URL('../../patches/', import.meta.url);

test('the installed ssh2 carries every patch, each probe finding its own', () => {
  for (const probe of SSH2_PATCH_PROBES) assert.equal(probe.present(), true, `probe of ${probe.patch}`);
  assert.deepEqual(missingSsh2Patches(), []);
  assert.doesNotThrow(() => assertSsh2Patched());
});

test('one probe per patch file, in sequence order, for the pinned ssh2 version', () => {
  const files = readdirSync(patchDir).filter((f) => f.endsWith('.patch')).sort();
  assert.deepEqual(files, SSH2_PATCH_PROBES.map((p) => `ssh2+${SSH2_PATCHED_VERSION}+${p.patch}.patch`));
  assert.equal(projectPackage.dependencies.ssh2, SSH2_PATCHED_VERSION, 'package.json pins ssh2 exactly');
  assert.equal(ssh2Package.version, SSH2_PATCHED_VERSION);
});

/** The real probes, with the one for `patch` replaced. */
function withProbe(patch: string, present: () => boolean): Ssh2PatchProbe[] {
  return SSH2_PATCH_PROBES.map((p) => (p.patch === patch ? { patch, present } : p));
}

function unpatchedError(fn: () => void): PosternError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PosternError, String(err));
    return err;
  }
  assert.fail('expected ERR_POSTERN_SSH2_UNPATCHED');
}

test('a failing probe: ERR_POSTERN_SSH2_UNPATCHED naming that patch, with a reinstall hint', () => {
  const err = unpatchedError(() => assertSsh2Patched(withProbe('005+chacha20-nonce', () => false)));
  assert.equal(err.code, ERR_SSH2_UNPATCHED);
  assert.equal(err.code, 'ERR_POSTERN_SSH2_UNPATCHED');
  assert.equal(err.message, "the ssh2 in use lacks Postern's patch 005+chacha20-nonce");
  assert.match(err.hint ?? '', /npm install/);
  assert.match(err.hint ?? '', /reinstall postern/);
  assert.equal(err.exitCode, 1);
});

test('a probe that throws counts as missing; several missing are all named, in order', () => {
  const probes = withProbe('002+host-certificates', () => { throw new TypeError('no such property'); })
    .map((p) => (p.patch === '007+strict-public-key-type' ? { ...p, present: () => false } : p));
  assert.deepEqual(missingSsh2Patches(probes), ['002+host-certificates', '007+strict-public-key-type']);
  const err = unpatchedError(() => assertSsh2Patched(probes));
  assert.equal(err.code, 'ERR_POSTERN_SSH2_UNPATCHED');
  assert.match(err.message, /patches 002\+host-certificates, 007\+strict-public-key-type$/);
});

test('another ssh2 version is named next to the missing patches', () => {
  const err = unpatchedError(() => assertSsh2Patched(withProbe('001+client-certificates', () => false), '1.18.0'));
  assert.match(err.message, /\(ssh2 1\.18\.0 is installed; the patches fit 1\.17\.0\)$/);
});
