/** OpenSSH's clients through Postern with session_recording off (the default): see openssh-suite.ts. */
import { opensshSuite } from './openssh-suite.ts';

opensshSuite('default');
