/** OpenSSH's clients through Postern with session_recording: proxy: see openssh-suite.ts. */
import { opensshSuite } from './openssh-suite.ts';

opensshSuite('recording');
