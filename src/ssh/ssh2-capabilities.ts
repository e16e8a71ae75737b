/**
 * Checks at run time that the ssh2 in use carries every Postern patch
 * (patches/ssh2+1.17.0+NNN+name.patch, applied in order by patch-package at install;
 * docs/ssh2-patches.md says what each one does and why).
 *
 * Without the patches ssh2 still loads, and then fails far from the cause: sshd refuses
 * the user certificate, OpenSSH clients do not trust the proxy's host key, agent
 * forwarding through the recording proxy breaks. That happens when npm ran with
 * `--ignore-scripts`, when another ssh2 got hoisted, or when the version moved.
 * `postern serve`, `ssh` and `proxy ssh` call {@link assertSsh2Patched} first.
 *
 * One probe per patch file is enough: patch-package applies a file whole or not at all,
 * and stops at the first file that fails. Each probe looks for something that only its
 * patch adds, through the same module instances Postern uses (static imports, so the
 * esbuild bundle checks its bundled copy, not whatever node_modules holds). No probe
 * touches the network or runs a handshake, and on a patched ssh2 none decodes a key: the
 * whole check costs about 2.5 ms in a CPU profile of the bundled `postern ssh`, once
 * ssh2 is loaded, which these commands do anyway.
 *
 * Four probes read a function's source text, because what their patch changes is
 * inside a closure or a private function. Their patterns allow for the bundle: esbuild
 * reprints code (spacing, quotes) and may add digits to a name to keep it unique.
 */
import ssh2 from 'ssh2';
import ssh2Package from 'ssh2/package.json' with { type: 'json' };
import keyParser from 'ssh2/lib/protocol/keyParser.js';
import constants from 'ssh2/lib/protocol/constants.js';
import miscHandlers from 'ssh2/lib/protocol/handlers.misc.js';
import ssh2Crypto from 'ssh2/lib/protocol/crypto.js';
import Ssh2Protocol from 'ssh2/lib/protocol/Protocol.js';
import ssh2Channel from 'ssh2/lib/Channel.js';
import { PosternError } from '../core/errors.ts';

/** The ssh2 version the patches are made for (package.json pins it exactly). */
export const SSH2_PATCHED_VERSION = '1.17.0';

/** Error code when the ssh2 in use lacks one of Postern's patches. */
export const ERR_SSH2_UNPATCHED = 'ERR_POSTERN_SSH2_UNPATCHED';

/** A cheap test that one patch file is applied. */
export interface Ssh2PatchProbe {
  /** The patch file's sequence part, e.g. `001+client-certificates`. */
  patch: string;
  /** True when what the patch adds is there; a throw counts as false. */
  present(): boolean;
}

const CERT_SUFFIX = '-cert-v01@openssh.com';
const CERT_TYPE = `ssh-ed25519${CERT_SUFFIX}`;

/** SSH wire string: uint32 length, then the bytes. */
function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** The start of an ed25519 certificate: all ssh2 reads to parse one (type, nonce, key). */
function certificateStub(): Buffer {
  return Buffer.concat([sshString(Buffer.from(CERT_TYPE)), sshString(Buffer.alloc(32)), sshString(Buffer.alloc(32, 1))]);
}

/** The type ssh2 parses a key as, or undefined when it refuses it. */
function parsedType(data: Buffer | string): string | undefined {
  const key = ssh2.utils.parseKey(data);
  return key instanceof Error || Array.isArray(key) ? undefined : key.type;
}

/** Whether a function's source text matches; patterns allow for esbuild's reprinting. */
function sourceMatches(fn: unknown, pattern: RegExp): boolean {
  return typeof fn === 'function' && pattern.test(Function.prototype.toString.call(fn));
}

/** ssh2's server-side connection class (a public property of Server, untyped). */
function incomingClient(): { prototype: Record<string, unknown> } | undefined {
  return (ssh2.Server as unknown as { IncomingClient?: { prototype: Record<string, unknown> } }).IncomingClient;
}

/** The JavaScript (not native-binding) chacha20-poly1305 cipher and decipher, on a zero key. */
function chachaPair(): { cipher: Record<string, unknown>; decipher: Record<string, unknown> } {
  const info = ssh2Crypto.CIPHER_INFO['chacha20-poly1305@openssh.com'];
  const key = Buffer.alloc(info.keyLen);
  const cipher = ssh2Crypto.createCipher({ outbound: { onWrite: () => {}, cipherInfo: info, cipherKey: key, seqno: 0, forceNative: true } });
  const decipher = ssh2Crypto.createDecipher({ inbound: { onPayload: () => {}, decipherInfo: info, decipherKey: key, seqno: 0, forceNative: true } });
  return { cipher: cipher as Record<string, unknown>, decipher: decipher as Record<string, unknown> };
}

/** One probe per file in patches/, in sequence order. */
export const SSH2_PATCH_PROBES: readonly Ssh2PatchProbe[] = [
  {
    // keyParser exports certifyKey (no key is parsed here: OpenSSL's first key decode costs ~20 ms)
    patch: '001+client-certificates',
    present: () => typeof keyParser.certifyKey === 'function',
  },
  {
    // the KEX may negotiate a host certificate algorithm
    patch: '002+host-certificates',
    present: () => constants.SUPPORTED_SERVER_HOST_KEY.some((algo) => algo.endsWith(CERT_SUFFIX)),
  },
  {
    // the server's USERAUTH_REQUEST handler takes the signature algorithm from the certificate type
    patch: '003+server-certificate-checks',
    present: () => sourceMatches(miscHandlers[constants.MESSAGE.USERAUTH_REQUEST], /\bcertBaseAlgo\d*\(/),
  },
  {
    // a server connection can open a channel to the client's forwarded agent
    patch: '004+forwarded-agent',
    present: () => typeof incomingClient()?.prototype.openssh_authAgent === 'function',
  },
  {
    // each JavaScript chacha20 cipher and decipher has its own nonce buffer
    patch: '005+chacha20-nonce',
    present: () => {
      const { cipher, decipher } = chachaPair();
      return Buffer.isBuffer(cipher._nonce) && Buffer.isBuffer(decipher._nonce) && cipher._nonce !== decipher._nonce;
    },
  },
  {
    // packet padding comes from the pool, not one randomFillSync per packet
    patch: '006+padding-pool',
    present: () => sourceMatches((Object.getPrototypeOf(chachaPair().cipher) as Record<string, unknown>).allocPacket, /\bfillPadding\d*\(/),
  },
  {
    // an OpenSSH public key line whose label differs from the key's own type is refused
    // (before any key decoding when patched, so this stays cheap)
    patch: '007+strict-public-key-type',
    present: () => parsedType(`ssh-ed25519 ${certificateStub().toString('base64')}`) === undefined,
  },
  {
    // reject() of an incoming channel open takes the app's reason code (and description)
    patch: '008+channel-open-failure-reason',
    present: () => sourceMatches(incomingClient(), /typeof\s+reasonCode\d*\s*===\s*["']number["']/),
  },
  {
    // a repeated ssh-userauth service request before authentication is accepted
    // (unpatched, the server's SERVICE_REQUEST handler disconnects once acceptedAuthSvc is set)
    patch: '009+service-request-again',
    present: () => sourceMatches(incomingClient(), /SERVICE_REQUEST/) && !sourceMatches(incomingClient(), /exchanges\d*\s*===\s*0\s*\|\|\s*acceptedAuthSvc/),
  },
  {
    // the transport socket is corked for the rest of the event loop's turn: one writev per
    // turn instead of one write() per packet (checked on the server's and the client's side)
    patch: '010+cork-writes',
    present: () => sourceMatches(incomingClient(), /\.cork\(\)/) && sourceMatches(Object.getOwnPropertyDescriptor(ssh2.Client.prototype, 'connect')?.value, /\.cork\(\)/),
  },
  {
    // the transport parses a pooled read buffer without keeping views of it, lending
    // channel data only to a consumer that takes it at once
    patch: '011+borrowed-reads',
    present: () => typeof Ssh2Protocol.prototype.parseBorrowed === 'function' && typeof ssh2Channel.lendsData === 'function',
  },
];

/** The patches whose probe fails, in sequence order; empty when ssh2 is fully patched. */
export function missingSsh2Patches(probes: readonly Ssh2PatchProbe[] = SSH2_PATCH_PROBES): string[] {
  return probes.filter((probe) => {
    try {
      return !probe.present();
    } catch {
      return true;
    }
  }).map((probe) => probe.patch);
}

/**
 * Throws `ERR_POSTERN_SSH2_UNPATCHED` unless the ssh2 in use carries every patch;
 * `installedVersion` is for tests (the default is the version ssh2's package.json says).
 */
export function assertSsh2Patched(probes: readonly Ssh2PatchProbe[] = SSH2_PATCH_PROBES, installedVersion: string = ssh2Package.version): void {
  const missing = missingSsh2Patches(probes);
  if (missing.length === 0) return;
  const which = missing.length === 1 ? `patch ${missing[0]}` : `patches ${missing.join(', ')}`;
  const version = installedVersion === SSH2_PATCHED_VERSION ? '' : ` (ssh2 ${installedVersion} is installed; the patches fit ${SSH2_PATCHED_VERSION})`;
  throw new PosternError(ERR_SSH2_UNPATCHED, `the ssh2 in use lacks Postern's ${which}${version}`, {
    hint: `Reinstall so patch-package applies patches/ssh2+${SSH2_PATCHED_VERSION}+*.patch: run \`npm install\` in the postern checkout (without --ignore-scripts), or reinstall postern`,
  });
}
