/**
 * Lines of OpenSSH's known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain host
 * keys, and `@cert-authority` lines that make `ssh` trust any host certificate the
 * cluster's host CA signed.
 */
import { ValidationError } from '../core/errors.ts';
import { formatAuthorizedKey } from './keys.ts';

// A pattern is one known_hosts field: no whitespace, no comma inside, no control characters.
function checkPattern(pattern: string): string {
  if (typeof pattern !== 'string' || pattern === '' || /[\s,\u0000-\u001f\u007f]/.test(pattern)) {
    throw new ValidationError(`invalid known_hosts host pattern "${String(pattern)}"`);
  }
  return pattern;
}

/** Formats "@cert-authority PATTERNS KEY [COMMENT]": trust host certificates signed by this CA for hosts matching the patterns. */
export function formatCertAuthorityLine(hostPatterns: string | string[], caWire: Buffer, comment?: string): string {
  const patterns = (Array.isArray(hostPatterns) ? hostPatterns : [hostPatterns]).map(checkPattern);
  if (patterns.length === 0) throw new ValidationError('a @cert-authority line needs at least one host pattern');
  return `@cert-authority ${patterns.join(',')} ${formatAuthorizedKey(caWire, comment)}`;
}

/** Formats the known_hosts name of a host as `ssh` writes it: "host" on port 22, "[host]:port" on any other. */
export function knownHostName(host: string, port = 22): string {
  checkPattern(host);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new ValidationError(`invalid port ${port}`);
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Formats one known_hosts line for a host key: "[host]:port ssh-ed25519 AAAA…" (no brackets on port 22). */
export function formatKnownHostLine(host: string, port: number, wire: Buffer, comment?: string): string {
  return `${knownHostName(host, port)} ${formatAuthorizedKey(wire, comment)}`;
}
