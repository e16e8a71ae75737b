/** paramiko and asyncssh through Postern with session_recording proxy: see python-suite.ts. */
import { pythonSuite } from './python-suite.ts';

pythonSuite('recording');
