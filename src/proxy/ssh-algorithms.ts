/**
 * The algorithms the proxy's own SSH offers: the listener (and the recording proxy's inner
 * server) and the recording proxy's connection to a node. ssh2's defaults advertise
 * `diffie-hellman-group-exchange-sha256`, which its server does not implement (a client that
 * picks it is disconnected), plain `zlib` (compression before authentication), SHA-1 MACs
 * and odd-sized DH groups. These lists keep what works and what Debian's stock sshd offers,
 * so `ssh-audit` finds nothing against the proxy that it does not find against that sshd
 * (test/interop/ssh-audit.test.ts).
 */
import type { Algorithms, CipherAlgorithm, CompressionAlgorithm, KexAlgorithm, MacAlgorithm } from 'ssh2';

const KEX: KexAlgorithm[] = [
  'curve25519-sha256', 'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256',
];
const CIPHERS: CipherAlgorithm[] = [
  'chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com',
  'aes128-ctr', 'aes192-ctr', 'aes256-ctr',
];
const MACS: MacAlgorithm[] = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'];
/** Compression only after authentication (OpenSSH's delayed zlib), never plain `zlib`. */
const COMPRESS: CompressionAlgorithm[] = ['none', 'zlib@openssh.com'];

/** The proxy's SSH servers: the listener and the recording proxy's inner server. */
export const PROXY_SERVER_ALGORITHMS: Algorithms = { kex: KEX, cipher: CIPHERS, hmac: MACS, compress: COMPRESS };

/** The recording proxy's connection to a node (host key algorithms are the node client's). */
export const NODE_CLIENT_ALGORITHMS: Omit<Algorithms, 'serverHostKey'> = { kex: KEX, cipher: CIPHERS, hmac: MACS, compress: COMPRESS };
