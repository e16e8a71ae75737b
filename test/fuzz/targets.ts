/**
 * Property-based fuzzing (fast-check) of every parser that takes outside input: SSH
 * certificates, public and private keys and signatures (src/ssh), the agent protocol, the
 * signed-request header, the tunnel request line, the nodes query, label selectors,
 * durations, asciicast lines and files. Each property feeds random input and input made by
 * mutating valid input (bytes set, dropped, inserted, cut), and holds that a parser either
 * answers or throws a PosternError (the project's typed errors: never a TypeError, a
 * RangeError or a crash); where there is an encoder, that decoding what it encoded gives
 * back the same value. test/unit/fuzz.test.ts runs each briefly; `npm run fuzz`
 * (test/fuzz/run.ts) runs each with POSTERN_FUZZ_RUNS inputs (100,000 by default).
 */
import fc from 'fast-check';
import { PosternError } from '../../src/core/errors.ts';
import { generateKeyPair, formatAuthorizedKey, parseAuthorizedKey, publicKeyFromWire, verifySsh, signSsh, encodePrivateKeyOpenSSH, parsePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import { signCertificate, parseCertificate, formatCertificate, verifyCertificate } from '../../src/ssh/certs.ts';
import {
  readAgentFrame, decodeAgentRequest, decodeIdentitiesAnswer, decodeSignResponse, decodeSignatureBlob, encodeIdentitiesAnswer, encodeSignRequest,
  encodeSignResponse, agentReplyBody, frameAgentMessage,
} from '../../src/ssh/agent-protocol.ts';
import { parseCertAuthHeader, parseNodesQuery } from '../../src/proxy/cert-auth.ts';
import { parseTunnelRequest } from '../../src/proxy/tunnel.ts';
import { signRequest } from '../../src/client/request-signing.ts';
import { parseSelector, parseLabels, checkLabels, formatLabels } from '../../src/api/labels.ts';
import { parseDuration, formatDuration, MAX_DURATION_MS } from '../../src/core/durations.ts';
import { parseCastEvent, parseCast, formatCastEvent } from '../../src/api/asciicast.ts';
import type { CastEvent } from '../../src/api/asciicast.ts';
import { fuzzWebApi } from './web-api.ts';

/** One parser's properties; `run` throws (fast-check's report) when one fails. */
export interface FuzzTarget {
  name: string;
  run(numRuns: number, seed?: number): void | Promise<void>;
}

export { closeWebUnderTest } from './web-api.ts';

/** Calls `fn`; a throw that is not a PosternError is the bug fuzzing looks for. */
function typed<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PosternError) return undefined;
    throw err;
  }
}

/** Bytes made from `base` by a few random edits, or random bytes. */
function mutatedBytes(base: Buffer): fc.Arbitrary<Buffer> {
  const edit = fc.tuple(fc.constantFrom('set', 'del', 'ins', 'cut', 'u32'), fc.nat(), fc.nat(255));
  const mutated = fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => {
    let b = Buffer.from(base);
    for (const [op, at, v] of edits) {
      const i = b.length === 0 ? 0 : at % b.length;
      if (op === 'set' && b.length > 0) b[i] = v;
      else if (op === 'del') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      else if (op === 'ins') b = Buffer.concat([b.subarray(0, i), Buffer.of(v), b.subarray(i)]);
      else if (op === 'cut') b = b.subarray(0, i);
      // A length field made huge or zero: where parsers trust lengths.
      else if (op === 'u32' && b.length >= i + 4) b.writeUInt32BE(v === 0 ? 0 : (v * 0x01010101) >>> 0, i);
    }
    return b;
  });
  return fc.oneof(mutated, fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)));
}

/** Text made from `base` by random edits, or random text. */
function mutatedText(base: string): fc.Arbitrary<string> {
  const edit = fc.tuple(fc.constantFrom('set', 'del', 'ins', 'cut'), fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }));
  const mutated = fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let s = base;
    for (const [op, at, v] of edits) {
      const i = s.length === 0 ? 0 : at % s.length;
      if (op === 'set') s = s.slice(0, i) + v + s.slice(i + 1);
      else if (op === 'del') s = s.slice(0, i) + s.slice(i + 1);
      else if (op === 'ins') s = s.slice(0, i) + v + s.slice(i);
      else s = s.slice(0, i);
    }
    return s;
  });
  return fc.oneof(mutated, fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 }));
}

const ca = generateKeyPair();
const subject = generateKeyPair();
const NOW = new Date('2030-01-01T00:00:00Z');
const validCert = signCertificate(ca, { type: 'user', subjectPublicKey: subject.publicWire, keyId: 'alice', principals: ['root', 'ubuntu'], ttlMs: 3_600_000, serial: 7n, now: NOW });
const validCertLine = formatCertificate(validCert, 'alice');
const validKeyLine = formatAuthorizedKey(subject.publicWire, 'alice@laptop');
const validPem = encodePrivateKeyOpenSSH(subject, 'alice');
const validSig = signSsh(subject.privateKey, Buffer.from('data'));
const validHeader = signRequest({ keyPair: subject, certificate: validCert.raw, method: 'GET', pathAndQuery: '/webapi/nodes', now: NOW });
const validTunnel = JSON.stringify({ v: 1, path: '/tunnel?target=web1&port=22&login=root', authorization: validHeader });


/** Every parser's properties. */
export const TARGETS: FuzzTarget[] = [
  {
    name: 'certificates: parse and verify mutated and random blobs',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedBytes(validCert.raw), (b) => {
      const cert = typed(() => parseCertificate(b));
      if (cert) typed(() => verifyCertificate(cert, { caPublicKeys: [ca.publicWire], type: 'user', now: NOW }));
    }), { numRuns, seed }),
  },
  {
    name: 'certificates: certificate lines (base64 text) mutated',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedText(validCertLine), (s) => { typed(() => parseCertificate(s)); }), { numRuns, seed }),
  },
  {
    name: 'certificates: what signCertificate makes parses back to the same fields',
    run: (numRuns, seed) => fc.assert(fc.property(
      fc.string({ unit: 'grapheme', maxLength: 40 }), fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), { maxLength: 5 }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 1000, max: 10 * 365 * 86_400_000 }), fc.constantFrom('user', 'host'),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
      (keyId, principals, serial, ttlMs, type, extensions) => {
        // A request signCertificate refuses is refused with a PosternError; one it signs must round-trip.
        const cert = typed(() => signCertificate(ca, { type: type as 'user' | 'host', subjectPublicKey: subject.publicWire, keyId, principals, ttlMs, serial, now: NOW, extensions }));
        if (!cert) return;
        const back = parseCertificate(formatCertificate(cert));
        if (back.keyId !== keyId || back.serial !== serial || back.type !== type || JSON.stringify(back.principals) !== JSON.stringify(principals)) throw new Error('round trip changed the certificate');
        if (JSON.stringify(Object.entries(back.extensions).sort()) !== JSON.stringify(Object.entries(extensions).sort())) throw new Error('round trip changed the extensions');
        verifyCertificate(back, { caPublicKeys: [ca.publicWire], type: type as 'user' | 'host', now: new Date(NOW.getTime() + 1) });
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed }),
  },
  {
    name: 'keys: authorized_keys lines mutated; a formatted key parses back',
    run: (numRuns, seed) => {
      fc.assert(fc.property(mutatedText(validKeyLine), (s) => { typed(() => parseAuthorizedKey(s)); }), { numRuns, seed });
      fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'abc xyz@-.'), maxLength: 30 }), (comment) => {
        const k = parseAuthorizedKey(formatAuthorizedKey(subject.publicWire, comment));
        if (!k.wire.equals(subject.publicWire)) throw new Error('round trip changed the key');
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed });
    },
  },
  {
    name: 'keys: public key wire blobs mutated',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedBytes(subject.publicWire), (b) => { typed(() => publicKeyFromWire(b)); }), { numRuns, seed }),
  },
  {
    name: 'keys: OpenSSH private key PEM mutated; an encoded key parses back',
    run: (numRuns, seed) => {
      fc.assert(fc.property(mutatedText(validPem), (s) => { typed(() => parsePrivateKeyOpenSSH(s)); }), { numRuns, seed });
      const back = parsePrivateKeyOpenSSH(validPem);
      if (!back.publicWire.equals(subject.publicWire)) throw new Error('round trip changed the private key');
    },
  },
  {
    name: 'signatures: signature blobs mutated never verify and never crash',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedBytes(validSig), (b) => {
      const ok = typed(() => verifySsh(subject.publicWire, Buffer.from('data'), b));
      if (ok === true && !b.equals(validSig)) {
        // ed25519 signatures are not malleable: only the original verifies.
        throw new Error('a changed signature verified');
      }
    }), { numRuns, seed }),
  },
  {
    name: 'agent protocol: frames, requests and answers mutated; encoders round-trip',
    run: (numRuns, seed) => {
      const sign = encodeSignRequest(validCert.raw, Buffer.from('session data'), 0);
      const answer = encodeIdentitiesAnswer([{ wire: validCert.raw, comment: 'c' }, { wire: subject.publicWire, comment: 'k' }]);
      fc.assert(fc.property(mutatedBytes(frameAgentMessage(sign)), (b) => {
        const f = readAgentFrame(b, 'fuzz');
        if (f && !(f instanceof PosternError)) typed(() => decodeAgentRequest(f.message));
      }), { numRuns, seed });
      fc.assert(fc.property(mutatedBytes(answer), (b) => {
        typed(() => decodeIdentitiesAnswer(agentReplyBody(b, 12, 'list keys', 'fuzz'), 'fuzz'));
        typed(() => decodeSignatureBlob(decodeSignResponse(agentReplyBody(b, 14, 'sign', 'fuzz'), 'fuzz'), 'fuzz'));
      }), { numRuns, seed });
      fc.assert(fc.property(fc.array(fc.record({ wire: fc.uint8Array({ maxLength: 64 }), comment: fc.string({ maxLength: 20 }) }), { maxLength: 5 }), fc.uint8Array({ maxLength: 64 }), (ids, sig) => {
        const back = decodeIdentitiesAnswer(encodeIdentitiesAnswer(ids.map((i) => ({ wire: Buffer.from(i.wire), comment: i.comment }))).subarray(1), 'fuzz');
        if (back.length !== ids.length || back.some((b, i) => !b.wire.equals(Buffer.from(ids[i].wire)) || b.comment !== ids[i].comment)) throw new Error('identities round trip');
        if (!decodeSignResponse(encodeSignResponse(sig).subarray(1), 'fuzz').equals(Buffer.from(sig))) throw new Error('sign response round trip');
        const req = decodeAgentRequest(encodeSignRequest(Buffer.from(sig), Buffer.from('d'), 2));
        if (req.type !== 'sign' || !req.wire.equals(Buffer.from(sig)) || req.flags !== 2) throw new Error('sign request round trip');
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed });
    },
  },
  {
    name: 'signed-request header: mutated and random Authorization values',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedText(validHeader), (s) => {
      const h = typed(() => parseCertAuthHeader(s));
      if (h && !/^[0-9a-f]{16,128}$/.test(h.nonce)) throw new Error('a malformed nonce got through');
    }), { numRuns, seed }),
  },
  {
    name: 'tunnel request line: mutated and random lines',
    run: (numRuns, seed) => fc.assert(fc.property(mutatedText(validTunnel), (s) => {
      const r = typed(() => parseTunnelRequest(s));
      if (r && (!(r.port >= 1 && r.port <= 65535) || r.target === '' || r.login === '')) throw new Error('a bad tunnel request got through');
    }), { numRuns, seed }),
  },
  {
    name: 'nodes query: random query objects',
    run: (numRuns, seed) => fc.assert(fc.property(fc.anything({ maxDepth: 2 }), fc.dictionary(fc.constantFrom('labels', 'search', 'x'), fc.oneof(fc.string({ maxLength: 300 }), fc.array(fc.string())), { maxKeys: 3 }), (a, q) => {
      typed(() => parseNodesQuery(a));
      typed(() => parseNodesQuery(q));
    }), { numRuns, seed }),
  },
  {
    name: 'labels: selectors, label lists and label objects; formatted labels parse back',
    run: (numRuns, seed) => {
      fc.assert(fc.property(mutatedText('env=prod,team=web'), fc.anything({ maxDepth: 2 }), (s, any) => {
        typed(() => parseSelector(s));
        typed(() => parseLabels(s));
        typed(() => checkLabels(any));
      }), { numRuns, seed });
      fc.assert(fc.property(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9._-]{0,20}$/), fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/), { maxKeys: 5 }), (labels) => {
        const ok = typed(() => checkLabels(labels));
        if (!ok || Object.keys(labels).length === 0) return;
        const back = parseLabels(formatLabels(ok));
        const sorted = (l: Record<string, string>): string => JSON.stringify(Object.entries(l).sort());
        if (sorted(back) !== sorted(ok)) throw new Error(`labels round trip: ${formatLabels(ok)}`);
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed });
    },
  },
  {
    name: 'durations: random text; a parsed duration is a positive whole number of ms; formatted ones parse back',
    run: (numRuns, seed) => {
      fc.assert(fc.property(fc.oneof(mutatedText('1h30m'), fc.stringMatching(/^(\d{1,400}(\.\d{1,5})?(ms|s|m|h|d)){1,4}$/)), (s) => {
        const ms = typed(() => parseDuration(s));
        if (ms !== undefined && !(Number.isSafeInteger(ms) && ms > 0 && ms <= MAX_DURATION_MS)) throw new Error(`parseDuration("${s}") gave ${ms}`);
      }), { numRuns, seed });
      fc.assert(fc.property(fc.integer({ min: 1000, max: 1000 * 86_400_000 }), (ms) => {
        const back = parseDuration(formatDuration(ms));
        if (Math.abs(back - ms) > 86_400_000) throw new Error(`${ms} → ${formatDuration(ms)} → ${back}`);
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed });
    },
  },
  {
    name: 'asciicast: event lines and whole files mutated; formatted events parse back',
    run: (numRuns, seed) => {
      const header = JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1 });
      const file = `${header}\n[0.5, "o", "hello"]\n[1.25, "r", "100x40"]\n[2, "m", "alice joined"]\n`;
      fc.assert(fc.property(mutatedText('[0.5, "o", "hello\\u001b[0m"]'), (s) => { typed(() => parseCastEvent(s)); }), { numRuns, seed });
      fc.assert(fc.property(mutatedText(file), (s) => { typed(() => parseCast(s)); }), { numRuns, seed });
      fc.assert(fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constantFrom('o', 'i', 'm'), fc.string({ unit: 'binary', maxLength: 50 }), (t, code, data) => {
        const ev = [t, code, data] as unknown as CastEvent;
        const back = typed(() => parseCastEvent(formatCastEvent(ev)));
        if (back && (back[1] !== code || back[2] !== data)) throw new Error('cast event round trip');
      }), { numRuns: Math.max(1, Math.floor(numRuns / 10)), seed });
    },
  },
  {
    name: 'web API: request bodies, queries, content types and Authorization headers through the real web server: never a 5xx',
    run: (numRuns, seed) => fuzzWebApi(numRuns, seed),
  },
];
