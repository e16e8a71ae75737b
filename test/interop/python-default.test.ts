/** paramiko and asyncssh through Postern with session_recording off (the default): see python-suite.ts. */
import { pythonSuite } from './python-suite.ts';

pythonSuite('default');
