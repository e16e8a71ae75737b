/**
 * The server side of the ssh-agent protocol (PROTOCOL.agent, draft-miller-ssh-agent) for
 * one key and its certificate: what auth answers for a web session's key, whose private
 * half never leaves auth. It understands REQUEST_IDENTITIES (the certificate, then the
 * plain key) and SIGN_REQUEST for either; every other request is FAILURE, so nobody can
 * add, remove or lock keys through it. Messages are given and returned without their
 * length prefix.
 */
import type { KeyObject } from 'node:crypto';
import { signSsh } from './keys.ts';
import { decodeAgentRequest, encodeAgentFailure, encodeIdentitiesAnswer, encodeSignResponse } from './agent-protocol.ts';

/** The one key an agent serves: its private key, its plain public blob, its certificate blob. */
export interface AgentKey {
  privateKey: KeyObject;
  publicWire: Buffer;
  certificateWire: Buffer;
  comment: string;
}

/** Answers one request. */
export function answerAgentRequest(key: AgentKey, request: Buffer): Buffer {
  if (request.length === 0) return encodeAgentFailure();
  try {
    const req = decodeAgentRequest(request);
    switch (req.type) {
      case 'requestIdentities':
        return encodeIdentitiesAnswer([
          { wire: key.certificateWire, comment: `${key.comment} (certificate)` },
          { wire: key.publicWire, comment: key.comment },
        ]);
      case 'sign':
        // flags: only RSA uses them; this key is ed25519
        if (!req.wire.equals(key.certificateWire) && !req.wire.equals(key.publicWire)) return encodeAgentFailure();
        return encodeSignResponse(signSsh(key.privateKey, req.data));
      default:
        return encodeAgentFailure();
    }
  } catch {
    return encodeAgentFailure();
  }
}
