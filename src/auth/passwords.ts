/** Password hashing with scrypt from node:crypto, in a self-describing string. */
import { scrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../core/errors.ts';

/** The shortest password a user may set. */
export const MIN_PASSWORD_LENGTH = 12;

const N = 1 << 15;
const R = 8;
const P = 1;
const KEYLEN = 32;
const MAXMEM = 128 * N * R * 2;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEYLEN, { N: n, r, p, maxmem: 128 * n * r * 2 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
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

/** Hashes a password: `scrypt$N$r$p$salt$hash` in base64. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A hash of nothing anybody knows, checked when the user does not exist so timing tells nothing. */
export const DUMMY_HASH = `scrypt$${N}$${R}$${P}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64')}`;

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
