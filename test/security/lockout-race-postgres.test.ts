/** The lockout race (lockout-race-suite.ts) with two auth servers, each with its own pool, on one PostgreSQL database. */
import { after } from 'node:test';
import { startPostgres } from '../helpers/postgres.ts';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import { lockoutRaceSuite } from './lockout-race-suite.ts';

const server = await startPostgres({ after });
const url = await server.createDatabase({ after });
lockoutRaceSuite('PostgreSQL', () => openPostgresBackend({ url }), false);
