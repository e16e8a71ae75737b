/**
 * A client for the ssh-agent protocol (draft-miller-ssh-agent, OpenSSH PROTOCOL.agent)
 * over a unix socket: list, add (with a certificate and constraints), remove, sign.
 * `postern login` uses it to load the new key and certificate into the user's agent.
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
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

const CONSTRAIN_LIFETIME = 1;
const CONSTRAIN_CONFIRM = 2;
// OpenSSH's agent refuses messages above 256 KiB; a reply that long is not from an agent.
const MAX_MESSAGE = 256 * 1024;

/** Flags for `AgentClient.sign`: which RSA signature algorithm to use. */
export const AgentSignFlags = { rsaSha2_256: 2, rsaSha2_512: 4 } as const;

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

interface Pending {
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
}

/** A connection to a running ssh-agent. */
export class AgentClient {
  private readonly socket: Socket;
  private buffered = Buffer.alloc(0);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closedError: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onClose(new AgentError('ERR_POSTERN_AGENT_CONNECTION', `ssh-agent connection failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.onClose(new AgentError('ERR_POSTERN_AGENT_CONNECTION', 'ssh-agent closed the connection')));
  }

  /** Connects to the agent listening on a unix socket (usually $SSH_AUTH_SOCK). */
  static connect(socketPath: string): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      const onError = (err: Error): void => {
        reject(new AgentError('ERR_POSTERN_AGENT_UNAVAILABLE', `cannot reach ssh-agent at ${socketPath}: ${err.message}`, {
          cause: err,
          hint: 'Start an agent with:  eval "$(ssh-agent)"  or check SSH_AUTH_SOCK',
        }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new AgentClient(socket));
      });
    });
  }

  /** The keys and certificates the agent holds. */
  async list(): Promise<AgentIdentity[]> {
    const r = await this.request(Buffer.of(MSG.requestIdentities), MSG.identitiesAnswer, 'list keys');
    return this.decode('identities answer', r, (reader) => {
      const count = reader.uint32();
      const out: AgentIdentity[] = [];
      for (let i = 0; i < count; i++) out.push({ wire: Buffer.from(reader.bytes()), comment: reader.string() });
      return out;
    });
  }

  /** Adds an ed25519 key pair, optionally with its certificate, a lifetime and confirmation. */
  async addIdentity(keyPair: SshKeyPair, options: AddIdentityOptions = {}): Promise<void> {
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
    await this.request(w.toBuffer(), MSG.success, 'add the key');
  }

  /** Removes one key (by its wire blob, or a certificate's blob) from the agent. */
  async remove(wire: Buffer): Promise<void> {
    await this.request(new SshWriter().byte(MSG.removeIdentity).string(wire).toBuffer(), MSG.success, 'remove the key');
  }

  /** Removes every key from the agent. */
  async removeAll(): Promise<void> {
    await this.request(Buffer.of(MSG.removeAllIdentities), MSG.success, 'remove all keys');
  }

  /** Asks the agent to sign data with the key whose wire blob is given; returns the SSH signature blob. */
  async sign(wire: Buffer, data: Uint8Array, flags = 0): Promise<Buffer> {
    const msg = new SshWriter().byte(MSG.signRequest).string(wire).string(data).uint32(flags).toBuffer();
    const r = await this.request(msg, MSG.signResponse, 'sign');
    return this.decode('sign response', r, (reader) => Buffer.from(reader.bytes()));
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.socket.destroy();
    this.onClose(new AgentError('ERR_POSTERN_AGENT_CONNECTION', 'ssh-agent connection was closed'));
  }

  private decode<T>(what: string, body: Buffer, read: (r: SshReader) => T): T {
    return decodeAgentMessage(`ssh-agent ${what}`, body, read);
  }

  // Requests go one at a time: the agent protocol has no request ids.
  private request(message: Buffer, expect: number, action: string): Promise<Buffer> {
    const run = (): Promise<Buffer> =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.closedError) return reject(this.closedError);
        this.pending = { resolve, reject };
        this.socket.write(new SshWriter().string(message).toBuffer());
      }).then((reply) => {
        const type = reply[0];
        if (type === expect) return reply.subarray(1);
        if (type === MSG.failure || type === MSG.extensionFailure) {
          throw new AgentError('ERR_POSTERN_AGENT_FAILURE', `ssh-agent refused to ${action}`);
        }
        throw new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `ssh-agent answered "${action}" with unexpected message type ${type}`);
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length === 0 || length > MAX_MESSAGE) {
        this.socket.destroy();
        this.onClose(new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `ssh-agent sent a message of ${length} bytes`));
        return;
      }
      if (this.buffered.length < 4 + length) return;
      const reply = this.buffered.subarray(4, 4 + length);
      this.buffered = this.buffered.subarray(4 + length);
      const pending = this.pending;
      this.pending = undefined;
      if (pending) {
        pending.resolve(Buffer.from(reply));
      } else {
        this.socket.destroy();
        this.onClose(new AgentError('ERR_POSTERN_AGENT_PROTOCOL', 'ssh-agent sent a reply nobody asked for'));
        return;
      }
    }
  }

  private onClose(err: Error): void {
    this.closedError ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.closedError);
  }
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
