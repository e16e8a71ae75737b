/**
 * A client for the ssh-agent protocol (draft-miller-ssh-agent, OpenSSH PROTOCOL.agent)
 * over a unix socket: list, add (with a certificate and constraints), remove, sign.
 * `postern login` uses it to load the new key and certificate into the user's agent.
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import {
  AGENT_MSG, AgentError, agentReplyBody, decodeIdentitiesAnswer, decodeSignResponse, encodeAddIdentity, encodeRemoveAllIdentities,
  encodeRemoveIdentity, encodeRequestIdentities, encodeSignRequest, frameAgentMessage, readAgentFrame,
} from './agent-protocol.ts';
import type { AddIdentityOptions, AgentIdentity } from './agent-protocol.ts';
import type { SshKeyPair } from './keys.ts';

// The codec's names, where callers of the agent client have always found them.
export { AGENT_MSG, AgentError, AgentSignFlags, decodeAgentMessage } from './agent-protocol.ts';
export type { AddIdentityOptions, AgentIdentity } from './agent-protocol.ts';

const MSG = AGENT_MSG;
const PEER = 'ssh-agent';

interface Pending {
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
}

/** A connection to a running ssh-agent. */
export class AgentClient {
  private readonly socket: Socket;
  private buffered: Buffer = Buffer.alloc(0);
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
    const r = await this.request(encodeRequestIdentities(), MSG.identitiesAnswer, 'list keys');
    return decodeIdentitiesAnswer(r, 'ssh-agent identities answer');
  }

  /** Adds an ed25519 key pair, optionally with its certificate, a lifetime and confirmation. */
  async addIdentity(keyPair: SshKeyPair, options: AddIdentityOptions = {}): Promise<void> {
    await this.request(encodeAddIdentity(keyPair, options), MSG.success, 'add the key');
  }

  /** Removes one key (by its wire blob, or a certificate's blob) from the agent. */
  async remove(wire: Buffer): Promise<void> {
    await this.request(encodeRemoveIdentity(wire), MSG.success, 'remove the key');
  }

  /** Removes every key from the agent. */
  async removeAll(): Promise<void> {
    await this.request(encodeRemoveAllIdentities(), MSG.success, 'remove all keys');
  }

  /** Asks the agent to sign data with the key whose wire blob is given; returns the SSH signature blob. */
  async sign(wire: Buffer, data: Uint8Array, flags = 0): Promise<Buffer> {
    const r = await this.request(encodeSignRequest(wire, data, flags), MSG.signResponse, 'sign');
    return decodeSignResponse(r, 'ssh-agent sign response');
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.socket.destroy();
    this.onClose(new AgentError('ERR_POSTERN_AGENT_CONNECTION', 'ssh-agent connection was closed'));
  }

  // Requests go one at a time: the agent protocol has no request ids.
  private request(message: Buffer, expect: number, action: string): Promise<Buffer> {
    const run = (): Promise<Buffer> =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.closedError) return reject(this.closedError);
        this.pending = { resolve, reject };
        this.socket.write(frameAgentMessage(message));
      }).then((reply) => agentReplyBody(reply, expect, action, PEER));
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const frame = readAgentFrame(this.buffered, PEER);
      if (frame === undefined) return;
      if (frame instanceof AgentError) {
        this.socket.destroy();
        this.onClose(frame);
        return;
      }
      this.buffered = frame.rest;
      const pending = this.pending;
      this.pending = undefined;
      if (pending) {
        pending.resolve(Buffer.from(frame.message));
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
