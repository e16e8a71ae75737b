/**
 * The ssh-agent protocol's messages (draft-miller-ssh-agent, OpenSSH PROTOCOL.agent):
 * framing, and encoding and decoding of the requests and replies Postern speaks. The one
 * codec of the protocol, used by every party: the client of the user's agent (agent.ts),
 * the client's forwarded agent on the proxy (forwarded-agent.ts), the web session's agent
 * on the proxy (proxy/auth-agent.ts) and the agent auth answers for it (agent-server.ts).
 * Messages are handled without their length prefix except by {@link frameAgentMessage}
 * and {@link readAgentFrame}.
 */
import { PosternError, ValidationError } from '../core/errors.ts';
import type { PosternErrorOptions } from '../core/errors.ts';
import type { SshCertificate } from './certs.ts';
import type { SshKeyPair } from './keys.ts';
import { SshFormatError, SshReader, SshWriter } from './wire.ts';

/** The PROTOCOL.agent message numbers Postern uses (draft-miller-ssh-agent). */
export const AGENT_MSG = {
  failure: 5,
  success: 6,
  requestIdentities: 11,
  identitiesAnswer: 12,
  signRequest: 13,
  signResponse: 14,
  addIdentity: 17,
  removeIdentity: 18,
  removeAllIdentities: 19,
  addIdConstrained: 25,
  extensionFailure: 28,
} as const;
const MSG = AGENT_MSG;

/** Flags of a sign request: which RSA signature algorithm to use. */
export const AgentSignFlags = { rsaSha2_256: 2, rsaSha2_512: 4 } as const;

const CONSTRAIN_LIFETIME = 1;
const CONSTRAIN_CONFIRM = 2;

/** OpenSSH's agent refuses messages above 256 KiB; a reply that long is not from an agent. */
export const MAX_AGENT_MESSAGE = 256 * 1024;

/** An agent that cannot be reached, or that refused or garbled a request. */
export class AgentError extends PosternError {
  constructor(code: string, message: string, options: PosternErrorOptions = {}) {
    super(code, message, options);
  }
}

/** One key the agent holds: its wire blob (a certificate blob for a certificate) and comment. */
export interface AgentIdentity {
  wire: Buffer;
  comment: string;
}

/** How to add a key to the agent. */
export interface AddIdentityOptions {
  /** A certificate for the key; the agent then holds it as a certificate identity. */
  certificate?: SshCertificate;
  comment?: string;
  /** The agent forgets the key after this many seconds. */
  lifetimeSeconds?: number;
  /** The agent asks the user (ssh-askpass) before each use. */
  confirm?: boolean;
}

/** A request as an agent reads it. */
export type AgentRequest =
  | { type: 'requestIdentities' }
  | { type: 'sign'; wire: Buffer; data: Buffer; flags: number }
  | { type: 'other'; code: number };

/** Prefixes a message with its length, as it goes on the stream. */
export function frameAgentMessage(message: Buffer): Buffer {
  return new SshWriter().string(message).toBuffer();
}

/**
 * Reads one framed message from the front of `buffered`: `undefined` until it is whole,
 * an AgentError (protocol) for a length no agent sends, else the message and what follows.
 * `peer` names the other side in the error ("ssh-agent", "the forwarded agent").
 */
export function readAgentFrame(buffered: Buffer, peer: string): { message: Buffer; rest: Buffer } | AgentError | undefined {
  if (buffered.length < 4) return undefined;
  const length = buffered.readUInt32BE(0);
  if (length === 0 || length > MAX_AGENT_MESSAGE) return new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `${peer} sent a message of ${length} bytes`);
  if (buffered.length < 4 + length) return undefined;
  return { message: buffered.subarray(4, 4 + length), rest: buffered.subarray(4 + length) };
}

/** Reads a whole agent message body; a malformed one is an AgentError (protocol). */
export function decodeAgentMessage<T>(what: string, body: Buffer, read: (r: SshReader) => T): T {
  try {
    const reader = new SshReader(body, what);
    const out = read(reader);
    reader.done();
    return out;
  } catch (err) {
    if (err instanceof SshFormatError) throw new AgentError('ERR_POSTERN_AGENT_PROTOCOL', err.message, { cause: err });
    throw err;
  }
}

/**
 * The body of a reply of type `expect`; FAILURE (or EXTENSION_FAILURE) is an AgentError
 * `ERR_POSTERN_AGENT_FAILURE` "<peer> refused to <action>", any other type a protocol error.
 */
export function agentReplyBody(reply: Buffer, expect: number, action: string, peer: string): Buffer {
  const type = reply[0];
  if (type === expect) return reply.subarray(1);
  if (type === MSG.failure || type === MSG.extensionFailure) {
    throw new AgentError('ERR_POSTERN_AGENT_FAILURE', `${peer} refused to ${action}`);
  }
  throw new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `${peer} answered "${action}" with unexpected message type ${type}`);
}

/** REQUEST_IDENTITIES. */
export function encodeRequestIdentities(): Buffer {
  return Buffer.of(MSG.requestIdentities);
}

/** SIGN_REQUEST for the key (or certificate) whose wire blob is given. */
export function encodeSignRequest(wire: Uint8Array, data: Uint8Array, flags = 0): Buffer {
  return new SshWriter().byte(MSG.signRequest).string(wire).string(data).uint32(flags).toBuffer();
}

/** ADD_IDENTITY (or ADD_ID_CONSTRAINED) of an ed25519 key pair, with its certificate when given. */
export function encodeAddIdentity(keyPair: SshKeyPair, options: AddIdentityOptions = {}): Buffer {
  const jwk = keyPair.privateKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d || !jwk.x) throw new ValidationError('only ed25519 keys can be added to the agent');
  const pub = Buffer.from(jwk.x, 'base64url');
  const seed = Buffer.from(jwk.d, 'base64url');
  const constraints = new SshWriter();
  if (options.lifetimeSeconds !== undefined) {
    const s = options.lifetimeSeconds;
    if (!Number.isInteger(s) || s <= 0 || s > 0xffff_ffff) throw new ValidationError('agent key lifetime must be a positive whole number of seconds');
    constraints.byte(CONSTRAIN_LIFETIME).uint32(s);
  }
  if (options.confirm) constraints.byte(CONSTRAIN_CONFIRM);
  const constraintBytes = constraints.toBuffer();
  const w = new SshWriter().byte(constraintBytes.length > 0 ? MSG.addIdConstrained : MSG.addIdentity);
  const cert = options.certificate;
  if (cert) {
    if (!cert.subjectPublicKey.equals(keyPair.publicWire)) throw new ValidationError('the certificate is not for this key');
    if (cert.keyType !== 'ssh-ed25519') throw new ValidationError('only ed25519 certificates can be added to the agent');
    w.string(cert.certType).string(cert.raw);
  } else {
    w.string('ssh-ed25519');
  }
  // Ed25519 private key fields: ENC(A), then k || ENC(A) as OpenSSH stores it.
  w.string(pub).string(Buffer.concat([seed, pub])).string(options.comment ?? '').raw(constraintBytes);
  return w.toBuffer();
}

/** REMOVE_IDENTITY of one key. */
export function encodeRemoveIdentity(wire: Uint8Array): Buffer {
  return new SshWriter().byte(MSG.removeIdentity).string(wire).toBuffer();
}

/** REMOVE_ALL_IDENTITIES. */
export function encodeRemoveAllIdentities(): Buffer {
  return Buffer.of(MSG.removeAllIdentities);
}

/** The body of IDENTITIES_ANSWER (after the type byte) read into identities. */
export function decodeIdentitiesAnswer(body: Buffer, what: string): AgentIdentity[] {
  return decodeAgentMessage(what, body, (reader) => {
    const count = reader.uint32();
    const out: AgentIdentity[] = [];
    for (let i = 0; i < count; i++) out.push({ wire: Buffer.from(reader.bytes()), comment: reader.string() });
    return out;
  });
}

/** The body of SIGN_RESPONSE (after the type byte): the SSH signature blob. */
export function decodeSignResponse(body: Buffer, what: string): Buffer {
  return decodeAgentMessage(what, body, (reader) => Buffer.from(reader.bytes()));
}

/** An SSH signature blob taken apart: (string algorithm, string signature). */
export function decodeSignatureBlob(blob: Buffer, what: string): { algo: string; bytes: Buffer } {
  return decodeAgentMessage(what, blob, (r) => ({ algo: r.string(), bytes: Buffer.from(r.bytes()) }));
}

/** Reads a request (type byte and body); throws SshFormatError when it is malformed. */
export function decodeAgentRequest(request: Buffer): AgentRequest {
  const r = new SshReader(request.subarray(1), 'agent request');
  switch (request[0]) {
    case MSG.requestIdentities:
      return { type: 'requestIdentities' };
    case MSG.signRequest: {
      const wire = r.bytes();
      const data = r.bytes();
      const flags = r.uint32();
      return { type: 'sign', wire, data, flags };
    }
    default:
      return { type: 'other', code: request[0] };
  }
}

/** IDENTITIES_ANSWER listing these identities. */
export function encodeIdentitiesAnswer(identities: AgentIdentity[]): Buffer {
  const w = new SshWriter().byte(MSG.identitiesAnswer).uint32(identities.length);
  for (const id of identities) w.string(id.wire).string(id.comment);
  return w.toBuffer();
}

/** SIGN_RESPONSE carrying an SSH signature blob. */
export function encodeSignResponse(signature: Uint8Array): Buffer {
  return new SshWriter().byte(MSG.signResponse).string(signature).toBuffer();
}

/** FAILURE. */
export function encodeAgentFailure(): Buffer {
  return Buffer.of(MSG.failure);
}
