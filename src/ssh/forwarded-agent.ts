/**
 * The ssh-agent a client forwarded to us (`ssh -A`), used from the server side
 * of an ssh2 connection: the client asks for forwarding with the session
 * request `auth-agent-req@openssh.com` (ssh2 emits it as the session's
 * 'auth-agent' event), and each agent conversation is a new
 * `auth-agent@openssh.com` channel that we open back to the client
 * ({@link openAgentChannel}, through the ssh2 patch's `conn.openssh_authAgent`).
 *
 * {@link ForwardedAgent} speaks PROTOCOL.agent (draft-miller-ssh-agent) over
 * such channels and is an ssh2 `BaseAgent`, so an ssh2 `Client` authenticates
 * with the key and certificate the user holds without the key ever leaving the
 * user's machine:
 *
 *   new Client().connect({ agent: new ForwardedAgent(() => openAgentChannel(conn)), … })
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Connection, ParsedKey, ServerChannel, SigningRequestOptions } from 'ssh2';
import {
  AGENT_MSG, AgentError, agentReplyBody, AgentSignFlags, decodeIdentitiesAnswer, decodeSignatureBlob, decodeSignResponse,
  encodeRequestIdentities, encodeSignRequest, frameAgentMessage, readAgentFrame,
} from './agent-protocol.ts';
import type { AgentIdentity } from './agent-protocol.ts';
import { CERT_SUFFIX, wireKeyType } from './keys.ts';

const MSG = AGENT_MSG;
const PEER = 'the forwarded agent';

/** Opens a fresh stream to the agent; one is opened per request and closed after it. */
export type AgentStreamOpener = () => Promise<Duplex>;

/** How a {@link ForwardedAgent} behaves. */
export interface ForwardedAgentOptions {
  /** How long one request (open, ask, answer) may take; default 60 s, for keys that need confirmation. */
  timeoutMs?: number;
  /** Which identities to offer for authentication (e.g. only certificates of one CA); default all. */
  filter?: (identity: AgentIdentity) => boolean;
}

/** The hint shown whenever a forwarded agent is missing. */
export const AGENT_FORWARDING_HINT = 'Connect with agent forwarding:  ssh -A, postern ssh -A, or ForwardAgent yes in ~/.ssh/config';

type SignCallback = (err?: Error | null, signature?: Buffer) => void;
type OpenAgent = (cb: (err: Error | undefined, channel: ServerChannel) => void) => void;

/**
 * Opens an `auth-agent@openssh.com` channel to the client of a server
 * connection. Call it only after a session's 'auth-agent' event: OpenSSH sends
 * that request only when it can reach an agent, and refuses a channel it did
 * not ask for, warning its user of "a break-in attempt". Rejects with
 * `ERR_POSTERN_AGENT_NOT_FORWARDED` when the client refuses, and
 * `ERR_POSTERN_AGENT_UNSUPPORTED` when the installed ssh2 lacks the patch.
 */
export function openAgentChannel(conn: Connection): Promise<ServerChannel> {
  const open = (conn as unknown as { openssh_authAgent?: OpenAgent }).openssh_authAgent;
  if (typeof open !== 'function') {
    return Promise.reject(new AgentError('ERR_POSTERN_AGENT_UNSUPPORTED', 'this ssh2 cannot open forwarded agent channels', {
      hint: 'Run `npm install` (its postinstall applies patches/ssh2+1.17.0+*.patch), or reinstall postern',
    }));
  }
  return new Promise((resolve, reject) => {
    open.call(conn, (err, channel) => {
      if (!err) return resolve(channel);
      const why = err.message.replace(/^\(SSH\) Channel open failure: /, '');
      reject(new AgentError('ERR_POSTERN_AGENT_NOT_FORWARDED', `the client refused to open its forwarded agent (${why})`, {
        cause: err,
        hint: AGENT_FORWARDING_HINT,
      }));
    });
  });
}

/** The key type a wire blob names ("ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"), or undefined. */
function wireType(wire: Buffer): string | undefined {
  try {
    return wireKeyType(wire);
  } catch {
    return undefined;
  }
}

/**
 * An ssh2 agent over a client's forwarded ssh-agent (or any stream speaking
 * PROTOCOL.agent): lists identities, certificates first, and signs with the
 * RSA SHA-2 flags ssh2 asks for. `getStream` lets an ssh2 Client forward it on
 * again (`agentForward: true`).
 */
export class ForwardedAgent extends ssh2.BaseAgent<Buffer | ParsedKey> {
  readonly #open: AgentStreamOpener;
  readonly #timeoutMs: number;
  readonly #filter: (identity: AgentIdentity) => boolean;

  constructor(open: AgentStreamOpener, options: ForwardedAgentOptions = {}) {
    super();
    this.#open = open;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#filter = options.filter ?? (() => true);
  }

  /** The keys and certificates the agent holds, in the agent's order. */
  async list(): Promise<AgentIdentity[]> {
    const body = await this.#request(encodeRequestIdentities(), MSG.identitiesAnswer, 'list keys');
    return decodeIdentitiesAnswer(body, 'forwarded agent identities answer');
  }

  /**
   * Asks the agent to sign `data` with the key (or certificate) whose wire blob
   * is given; returns the SSH signature blob (string algorithm, string signature).
   */
  async signBlob(wire: Buffer, data: Uint8Array, flags = 0): Promise<Buffer> {
    const body = await this.#request(encodeSignRequest(wire, data, flags), MSG.signResponse, 'sign');
    return decodeSignResponse(body, 'forwarded agent sign response');
  }

  /** ssh2's hook: the identities to try, as wire blobs, certificates first. */
  getIdentities(cb: (err?: Error | null, keys?: Buffer[]) => void): void {
    this.list().then((ids) => {
      const offered = ids.filter((id) => wireType(id.wire) !== undefined && this.#filter(id));
      const isCert = (id: AgentIdentity): boolean => wireType(id.wire)!.endsWith(CERT_SUFFIX);
      return [...offered.filter(isCert), ...offered.filter((id) => !isCert(id))].map((id) => id.wire);
    }).then((keys) => cb(null, keys), (err: Error) => cb(err));
  }

  /** ssh2's hook: signs for publickey auth, calling back with the bare signature ssh2 expects. */
  sign(pubKey: Buffer | ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    const hash = typeof options === 'function' ? undefined : options.hash;
    const done: SignCallback = (typeof options === 'function' ? options : cb) ?? (() => undefined);
    const wire = Buffer.isBuffer(pubKey) ? pubKey : pubKey.getPublicSSH();
    const type = wireType(wire);
    // The key in a certificate signs under the plain algorithm's name
    let expected = type?.endsWith(CERT_SUFFIX) ? type.slice(0, -CERT_SUFFIX.length) : type;
    let flags = 0;
    if (expected === 'ssh-rsa') {
      // ssh2 names the hash it chose from server-sig-algs; SHA-1 only when it names none.
      if (hash === 'sha256') [flags, expected] = [AgentSignFlags.rsaSha2_256, 'rsa-sha2-256'];
      else if (hash === 'sha512') [flags, expected] = [AgentSignFlags.rsaSha2_512, 'rsa-sha2-512'];
    }
    this.signBlob(wire, data, flags).then((blob) => {
      const sig = decodeSignatureBlob(blob, 'forwarded agent signature');
      if (sig.algo !== expected) {
        throw new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `the forwarded agent signed with ${sig.algo} where ${expected} was asked for`);
      }
      return sig.bytes;
    }).then((sig) => done(null, sig), (err: Error) => done(err));
  }

  /** ssh2's hook for agent forwarding: a fresh stream to the agent. */
  override getStream(cb: (err?: Error | null, stream?: Duplex) => void): void {
    this.#open().then((stream) => cb(null, stream), (err: Error) => cb(err));
  }

  // One request per stream: open, write the framed message, read one framed reply, close.
  // The timeout covers the open too: a client may never answer a CHANNEL_OPEN.
  async #request(message: Buffer, expect: number, action: string): Promise<Buffer> {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      let stream: Duplex | undefined;
      let settled = false;
      let buffered = Buffer.alloc(0);
      const finish = (err: Error | undefined, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // A late error from a stream we are done with is of no interest
        stream?.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onError).on('error', () => undefined);
        stream?.destroy();
        if (err) reject(err);
        else resolve(body!);
      };
      const onData = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const frame = readAgentFrame(buffered, PEER);
        if (frame === undefined) return;
        if (frame instanceof AgentError) finish(frame);
        else if (frame.rest.length > 0) finish(new AgentError('ERR_POSTERN_AGENT_PROTOCOL', `${PEER} sent more than one reply`));
        else finish(undefined, frame.message);
      };
      const onError = (err: Error): void => {
        finish(new AgentError('ERR_POSTERN_AGENT_CONNECTION', `forwarded agent connection failed: ${err.message}`, { cause: err }));
      };
      const onEnd = (): void => {
        finish(new AgentError('ERR_POSTERN_AGENT_CONNECTION', `the forwarded agent closed the connection before answering "${action}"`));
      };
      const timer = setTimeout(() => {
        finish(new AgentError('ERR_POSTERN_AGENT_TIMEOUT', `the forwarded agent did not answer "${action}" within ${this.#timeoutMs / 1000}s`));
      }, this.#timeoutMs);
      this.#open().then((opened) => {
        if (settled) {
          opened.destroy();
          return;
        }
        stream = opened;
        opened.on('data', onData).on('error', onError).on('end', onEnd).on('close', onEnd);
        opened.write(frameAgentMessage(message));
      }, (err: Error) => finish(err));
    });
    return agentReplyBody(reply, expect, action, PEER);
  }
}
