/**
 * A web session's ssh-agent, as an ssh2 agent: every request goes to auth
 * (webSessionAgent), which holds the session's key and answers PROTOCOL.agent for it. The
 * proxy signs its SSH login to the node through this and never holds the user's key.
 */
import ssh2 from 'ssh2';
import type { ParsedKey, SigningRequestOptions } from 'ssh2';
import type { WebSessionAgentAuth } from '../api/proxy-auth.ts';
import {
  AGENT_MSG, decodeIdentitiesAnswer, decodeSignatureBlob, decodeSignResponse, encodeRequestIdentities, encodeSignRequest,
} from '../ssh/agent-protocol.ts';
import { PosternError } from '../core/errors.ts';

const MSG = AGENT_MSG;

type SignCallback = (err?: Error | null, signature?: Buffer) => void;

/** The agent of one web session. */
export class AuthAgent extends ssh2.BaseAgent<Buffer | ParsedKey> {
  readonly #auth: WebSessionAgentAuth;
  readonly #sessionId: string;

  constructor(auth: WebSessionAgentAuth, sessionId: string) {
    super();
    this.#auth = auth;
    this.#sessionId = sessionId;
  }

  async #ask(message: Buffer, expect: number): Promise<Buffer> {
    const { message: answer } = await this.#auth.webSessionAgent({ sessionId: this.#sessionId, message: message.toString('base64') });
    const body = Buffer.from(answer, 'base64');
    if (body[0] !== expect) throw new PosternError('ERR_POSTERN_AGENT_FAILURE', 'the web session\'s agent refused the request');
    return body.subarray(1);
  }

  /** The certificate first, as auth lists it. */
  getIdentities(cb: (err?: Error | null, keys?: Buffer[]) => void): void {
    this.#ask(encodeRequestIdentities(), MSG.identitiesAnswer).then((body) => {
      cb(null, decodeIdentitiesAnswer(body, 'web session agent identities answer').map((id) => id.wire));
    }, (err: Error) => cb(err));
  }

  /** Signs `data` with the session's key (the plain key or its certificate). */
  sign(pubKey: Buffer | ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    const done = (typeof options === 'function' ? options : cb)!;
    const blob = Buffer.isBuffer(pubKey) ? pubKey : pubKey.getPublicSSH();
    this.#ask(encodeSignRequest(blob, data, 0), MSG.signResponse).then((body) => {
      // ssh2 wants the raw signature; the agent answers (string algorithm, string signature).
      done(null, decodeSignatureBlob(decodeSignResponse(body, 'web session agent sign response'), 'web session agent signature').bytes);
    }, (err: Error) => done(err));
  }
}
