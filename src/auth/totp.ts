/** TOTP (RFC 6238: SHA-1, 6 digits, 30 s) with ±1 step and the step counter a code used. */
import { TOTP, Secret } from 'otpauth';
import { ValidationError } from '../core/errors.ts';

/** The period of a code, in seconds. */
export const TOTP_PERIOD = 30;

/** Makes a new random base32 secret (160 bits, as RFC 4226 recommends). */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** Checks that text is a usable base32 secret, returning it normalised. */
export function normaliseTotpSecret(text: string): string {
  const s = text.replace(/[\s-]/g, '').toUpperCase().replace(/=+$/, '');
  if (!/^[A-Z2-7]+$/.test(s) || s.length < 16) {
    throw new ValidationError('invalid TOTP secret: expected base32 of at least 16 characters (80 bits)');
  }
  return s;
}

function totp(secret: string, issuer: string, label: string): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: TOTP_PERIOD, secret: Secret.fromBase32(secret) });
}

/** The `otpauth://` URI an authenticator app scans. */
export function totpUri(secret: string, issuer: string, user: string): string {
  return totp(secret, issuer, user).toString();
}

/** The code for a time, for tests and the CLI's own checks. */
export function totpCode(secret: string, at: Date): string {
  return totp(secret, 'postern', 'x').generate({ timestamp: at.getTime() });
}

/**
 * Checks a code at a time, allowing one step either side. Returns the step counter the
 * code belongs to, or undefined when it is wrong. Callers refuse counters already used.
 */
export function checkTotp(secret: string, code: string, at: Date): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secret, 'postern', 'x').validate({ token: code, timestamp: at.getTime(), window: 1 });
  if (delta === null) return undefined;
  return Math.floor(at.getTime() / 1000 / TOTP_PERIOD) + delta;
}
