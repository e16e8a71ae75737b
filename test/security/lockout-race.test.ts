/** The lockout race (lockout-race-suite.ts) with two auth servers on two handles of one SQLite database. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import { lockoutRaceSuite } from './lockout-race-suite.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'postern-lockout-'));
lockoutRaceSuite('SQLite', () => openSqliteBackend({ dataDir, sweepIntervalMs: 0 }), true);
