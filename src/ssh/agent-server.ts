/**
 * The server side of the ssh-agent protocol (PROTOCOL.agent, draft-miller-ssh-agent) for
 * one key and its certificate: what auth answers for a web session's key, whose private
 * half never leaves auth. It understands REQUEST_IDENTITIES (the certificate, then the
 * plain key) and SIGN_REQUEST for either; every other request is FAILURE, so nobody can
 * add, remove or lock keys through it. Messages are given and returned without their
 * length prefix.
 */
import type { KeyObject } from 'node:crypto';
import { SshReader, SshWriter } from './wire.ts';
import { signSsh } from './keys.ts';
import { AGENT_MSG } from './agent.ts';

const MSG = AGENT_MSG;

/** The one key an agent serves: its private key, its plain public blob, its certificate blob. */
export interface AgentKey {
  privateKey: KeyObject;
  publicWire: Buffer;
  certificateWire: Buffer;
  comment: string;
}

/** Answers one request. */
export function answerAgentRequest(key: AgentKey, request: Buffer): Buffer {
  if (request.length === 0) return Buffer.of(MSG.failure);
  try {
    const r = new SshReader(request.subarray(1), 'agent request');
    switch (request[0]) {
      case MSG.requestIdentities: {
        const w = new SshWriter().byte(MSG.identitiesAnswer).uint32(2);
        w.string(key.certificateWire).string(`${key.comment} (certificate)`);
        w.string(key.publicWire).string(key.comment);
        return w.toBuffer();
      }
      case MSG.signRequest: {
        const blob = r.bytes();
        const data = r.bytes();
        r.uint32(); // flags: only RSA uses them; this key is ed25519
        if (!Buffer.from(blob).equals(key.certificateWire) && !Buffer.from(blob).equals(key.publicWire)) return Buffer.of(MSG.failure);
        return new SshWriter().byte(MSG.signResponse).string(signSsh(key.privateKey, data)).toBuffer();
      }
      default:
        return Buffer.of(MSG.failure);
    }
  } catch {
    return Buffer.of(MSG.failure);
  }
}
