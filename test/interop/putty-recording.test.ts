/** PuTTY's plink and pscp through Postern with session_recording proxy: see putty-suite.ts. */
import { puttySuite } from './putty-suite.ts';

puttySuite('recording');
