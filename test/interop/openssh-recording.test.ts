/** OpenSSH's clients through Postern with session_recording proxy: see openssh-suite.ts. */
import { before, after } from 'node:test';
import { Interop } from './harness.ts';
import { opensshSuite } from './openssh-suite.ts';

const it = new Interop('recording');
before(async () => { await it.start(); });
after(async () => { await it.stop(); });
opensshSuite(it);
