/**
 * The dispatch of auth's calls: one handler table typed against AuthClient, behind the
 * role check. Every call of the contract reaches a handler (which checks its argument);
 * a name outside the contract, including an inherited property or a method of the
 * server, is refused before anything runs. Against a real AuthServer on SQLite.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer } from '../../src/auth/auth-server.ts';
import { AUTH_CALLS } from '../../src/api/auth-client.ts';
import type { AuthCallName } from '../../src/api/auth-client.ts';
import type { Identity } from '../../src/api/auth-types.ts';

let backend: Backend;
let auth: AuthServer;
const admin: Identity = { role: 'admin', name: 'admin' };
const proxy: Identity = { role: 'proxy', name: 'p1' };

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-dispatch-')) });
  auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', settings: { second_factor: 'off' } });
});
after(async () => { await backend.close(); });

test('a name outside the contract is refused as an unknown call, whoever asks', async () => {
  for (const name of ['nope', 'close', 'call', 'do_ping', 'joinProxy', 'issueIdentity', 'constructor', 'toString', '__proto__', 'hasOwnProperty', '']) {
    for (const id of [admin, proxy]) {
      await assert.rejects(auth.call(id, name, {}), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_POSTERN_INVALID', `${name}: ${err.message}`);
        assert.equal(err.message, `unknown auth call "${name}"`);
        return true;
      });
    }
  }
});

test('every call of the contract reaches its handler, which checks the argument it gets', async () => {
  for (const name of Object.keys(AUTH_CALLS) as AuthCallName[]) {
    const id = AUTH_CALLS[name].includes('proxy') ? proxy : admin;
    // A number is never a valid argument object: the handler refuses it with an error of its own (or has nothing to check).
    await auth.call(id, name, 42).then(
      () => {},
      (err: Error & { code?: string }) => {
        assert.match(String(err.code), /^ERR_POSTERN_/, `${name}: ${String(err)}`);
        assert.doesNotMatch(err.message, /unknown auth call|may not call/, name);
      },
    );
  }
});

test('a call outside the role of the caller is refused before its handler runs', async () => {
  await assert.rejects(auth.call(admin, 'loginSsh', {}), /a admin may not call loginSsh/);
  await assert.rejects(auth.call(proxy, 'createUser', { name: 'x' }), /a proxy may not call createUser/);
  assert.deepEqual((await auth.call(admin, 'listUsers', undefined)) as unknown[], [], 'the refused createUser created nothing');
});
