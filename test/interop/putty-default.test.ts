/** PuTTY's plink and pscp through Postern with session_recording off (the default): see putty-suite.ts. */
import { puttySuite } from './putty-suite.ts';

puttySuite('default');
