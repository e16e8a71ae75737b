/**
 * The restrictions a user certificate carries, enforced as OpenSSH's sshd does
 * (PROTOCOL.certkeys, sshd(8) "AUTHORIZED_KEYS FILE FORMAT", auth-options.c):
 *
 *   critical options   force-command, source-address, verify-required are known; any other
 *                      critical option refuses the certificate (the point of "critical").
 *   source-address     a comma list of addresses or CIDR blocks; the certificate is refused
 *                      from any other address, and when the list cannot be read.
 *   extensions         permit-port-forwarding, permit-pty, permit-agent-forwarding,
 *                      permit-X11-forwarding, permit-user-rc grant what they name; unknown
 *                      extensions are ignored.
 */
import { BlockList, isIP } from 'node:net';
import { CertificateError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import type { SshCertificate } from './certs.ts';

/** The critical options sshd knows for user certificates. */
export const KNOWN_CRITICAL_OPTIONS: readonly string[] = Object.freeze(['force-command', 'source-address', 'verify-required']);

/** An extension that grants something the proxy may be asked for. */
export type PermitExtension = 'permit-port-forwarding' | 'permit-pty' | 'permit-agent-forwarding' | 'permit-X11-forwarding' | 'permit-user-rc';

function refused(code: string, message: string): CertificateError {
  return new CertificateError(code, message, { status: 401 });
}

/** A client address as sshd compares it: IPv4-mapped IPv6 as plain IPv4. */
function plainAddress(addr: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr) ? addr.slice(7) : addr;
}

/**
 * Parses a source-address list into matchers, one per address family; throws CertificateError for a list sshd
 * would not read (characters other than hex digits, dots, colons and slashes, a bad
 * address or prefix length, an empty entry).
 */
export function parseSourceAddressList(list: string): { ipv4: BlockList; ipv6: BlockList } {
  // One list per family: sshd never matches an IPv4 client against an IPv6 entry (Node's BlockList would, for ::ffff: ones).
  const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
  const bad = (why: string): CertificateError =>
    refused('ERR_POSTERN_CERT_OPTION', `certificate source-address "${escapeControl(list)}" cannot be read: ${why}`);
  if (list === '') throw bad('it is empty');
  for (const entry of list.split(',')) {
    if (entry === '' || entry.length > 46 + 4 || !/^[0-9a-fA-F.:/]+$/.test(entry)) throw bad(`"${escapeControl(entry)}" is not an address or a CIDR block`);
    const [addr, len, extra] = entry.split('/');
    const family = isIP(addr);
    if (family === 0 || extra !== undefined) throw bad(`"${escapeControl(entry)}" is not an address or a CIDR block`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const max = family === 4 ? 32 : 128;
    const blocks = lists[type];
    if (len === undefined) {
      blocks.addAddress(addr, type);
      continue;
    }
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) throw bad(`"${escapeControl(entry)}" has a bad prefix length`);
    // As sshd (and ssh-keygen): no address bits may be set beyond the prefix ("127.0.0.1/24" is refused).
    if (hostBitsSet(addressBytes(addr, family), Number(len))) throw bad(`"${escapeControl(entry)}" has address bits set beyond its prefix length`);
    blocks.addSubnet(addr, Number(len), type);
  }
  return lists;
}

/** The bytes of an address isIP accepted (4 or 16). */
function addressBytes(addr: string, family: number): number[] {
  if (family === 4) return addr.split('.').map(Number);
  let text = addr.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = `${text.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.flatMap((g) => { const n = parseInt(g || '0', 16); return [n >> 8, n & 0xff]; });
}

function hostBitsSet(bytes: number[], prefix: number): boolean {
  return bytes.some((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return (b & (0xff >> keep)) !== 0;
  });
}

/** Whether `addr` is in a source-address list; throws when the list cannot be read. */
export function sourceAddressAllows(list: string, addr: string): boolean {
  const lists = parseSourceAddressList(list);
  const plain = plainAddress(addr);
  const family = isIP(plain);
  if (family === 0) return false;
  return family === 4 ? lists.ipv4.check(plain, 'ipv4') : lists.ipv6.check(plain, 'ipv6');
}

/**
 * Checks a user certificate's critical options for a login from `clientAddr`, as sshd
 * does after the CA and validity checks; throws CertificateError (401) saying why.
 * Without a client address a source-address certificate is refused (fail closed).
 */
export function checkCriticalOptions(cert: SshCertificate, clientAddr: string | undefined): void {
  for (const name of Object.keys(cert.criticalOptions)) {
    if (!KNOWN_CRITICAL_OPTIONS.includes(name)) {
      throw refused('ERR_POSTERN_CERT_OPTION', `certificate has the unknown critical option "${escapeControl(name)}"`);
    }
  }
  const list = cert.criticalOptions['source-address'];
  if (list === undefined) return;
  if (clientAddr === undefined || !sourceAddressAllows(list, clientAddr)) {
    throw refused('ERR_POSTERN_CERT_SOURCE_ADDRESS', `certificate is not valid from ${clientAddr === undefined ? 'an unknown address' : escapeControl(plainAddress(clientAddr))} (source-address ${escapeControl(list)})`);
  }
}

/** Whether a certificate grants an extension (present, any value). */
export function certPermits(cert: SshCertificate, ext: PermitExtension): boolean {
  return Object.prototype.hasOwnProperty.call(cert.extensions, ext);
}

/** The refusal of a request the certificate does not permit; one message for every surface. */
export function notPermittedMessage(ext: PermitExtension, what: string): string {
  return `${what} refused: the certificate does not carry ${ext}`;
}
