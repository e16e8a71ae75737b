/** Text helpers for printing what came from elsewhere, and for addresses. */
import { ValidationError } from './errors.ts';

/**
 * Escapes control characters (C0, DEL, C1) so text from a server or a file cannot move
 * the cursor, change colours or rewrite the terminal's title when printed.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Parses `HOST[:PORT]`, IPv6 in brackets, with a default port. */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m || !m[1]) throw new ValidationError(`invalid address "${text}"`, { hint: 'Use HOST or HOST:PORT, e.g. proxy.example.com:3080' });
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValidationError(`invalid port in "${text}"`, { hint: 'A port is a number from 0 to 65535' });
  return { host: m[1], port };
}

/** Formats a host and port back, bracketing IPv6. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
