/** OpenSSH's clients through Postern with session_recording off (the default): see openssh-suite.ts. */
import { before, after } from 'node:test';
import { Interop } from './harness.ts';
import { opensshSuite } from './openssh-suite.ts';

const it = new Interop('default');
before(async () => { await it.start(); });
after(async () => { await it.stop(); });
opensshSuite(it);
