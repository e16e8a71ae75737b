/** Password hashing with scrypt from node:crypto, in a self-describing string. */
import { scrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError, ValidationError } from '../core/errors.ts';

/** The shortest password a user may set. */
export const MIN_PASSWORD_LENGTH = 12;

/** log2 of scrypt's N for new hashes: N = 32768 (32 MiB with r = 8). Production always uses it. */
export const DEFAULT_SCRYPT_LOG2N = 15;
/** The lowest cost a test suite may ask for (N = 1024); nothing may go below it. */
export const MIN_SCRYPT_LOG2N = 10;
/**
 * The environment variable a test suite sets to make new hashes cheaper (a whole number from
 * MIN_SCRYPT_LOG2N to DEFAULT_SCRYPT_LOG2N). For tests only: it is read once where the auth
 * role is put together (auth/service.ts), never raises the cost, and unset means the default.
 */
export const TEST_SCRYPT_LOG2N_ENV = 'POSTERN_TEST_SCRYPT_LOG2N';

const R = 8;
const P = 1;
const KEYLEN = 32;
const MAXMEM = 128 * (1 << DEFAULT_SCRYPT_LOG2N) * R * 2;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEYLEN, { N: n, r, p, maxmem: 128 * n * r * 2 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** N for a cost, refusing anything outside [MIN_SCRYPT_LOG2N, DEFAULT_SCRYPT_LOG2N]. */
function scryptN(log2n: number): number {
  if (!Number.isInteger(log2n) || log2n < MIN_SCRYPT_LOG2N || log2n > DEFAULT_SCRYPT_LOG2N) {
    throw new RangeError(`scrypt cost log2(N) must be a whole number from ${MIN_SCRYPT_LOG2N} to ${DEFAULT_SCRYPT_LOG2N}, not ${log2n}`);
  }
  return 2 ** log2n;
}

/** The cost of new hashes from TEST_SCRYPT_LOG2N_ENV, or the default when it is unset. */
export function scryptCostFromEnv(env: NodeJS.ProcessEnv): number {
  const text = env[TEST_SCRYPT_LOG2N_ENV];
  if (text === undefined || text === '') return DEFAULT_SCRYPT_LOG2N;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= MIN_SCRYPT_LOG2N && n <= DEFAULT_SCRYPT_LOG2N)) {
    throw new ConfigError(`${TEST_SCRYPT_LOG2N_ENV} must be a whole number from ${MIN_SCRYPT_LOG2N} to ${DEFAULT_SCRYPT_LOG2N}, not "${text}"`, {
      hint: `It only makes test suites faster; unset it anywhere else`,
    });
  }
  return n;
}

/** Checks a new password against the policy; throws a ValidationError that says why. */
export function checkPasswordPolicy(password: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new ValidationError(`password is too short: it needs at least ${MIN_PASSWORD_LENGTH} characters`, {
      hint: 'Choose a longer password; a phrase of several words is easy to remember',
    });
  }
  if (password.length > 1024) throw new ValidationError('password is too long: at most 1024 characters');
}

/** Hashes a password: `scrypt$N$r$p$salt$hash` in base64; the cost is lowered only by tests. */
export async function hashPassword(password: string, log2n = DEFAULT_SCRYPT_LOG2N): Promise<string> {
  const n = scryptN(log2n);
  const salt = randomBytes(16);
  const hash = await derive(password, salt, n, R, P);
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A hash of nothing anybody knows at a cost, checked when the user does not exist so timing tells nothing. */
export function dummyHash(log2n = DEFAULT_SCRYPT_LOG2N): string {
  return `scrypt$${scryptN(log2n)}$${R}$${P}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64')}`;
}

/** The dummy hash at the default cost. */
export const DUMMY_HASH = dummyHash();

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (!(n > 1 && n <= 1 << 20 && r > 0 && r <= 32 && p > 0 && p <= 16) || 128 * n * r * 2 > MAXMEM * 8) return false;
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  const actual = await derive(password, salt, n, r, p);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
