/** Checks of call arguments shared by auth's calls. */
import { ValidationError } from '../core/errors.ts';

/** A required, non-empty string of at most 16 KiB; the error names the field. */
export function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ValidationError(`${field} is required`);
  if (v.length > 16_384) throw new ValidationError(`${field} is too long`);
  return v;
}
