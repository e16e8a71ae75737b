/**
 * Clients other than OpenSSH's through Postern with session_recording off (the default), on one
 * cluster: PuTTY (putty-suite.ts), paramiko and asyncssh (python-suite.ts).
 */
import { before, after } from 'node:test';
import { Interop } from './harness.ts';
import { puttySuite } from './putty-suite.ts';
import { pythonSuite } from './python-suite.ts';

const it = new Interop('default');
before(async () => { await it.start(); });
after(async () => { await it.stop(); });
puttySuite(it);
pythonSuite(it);
