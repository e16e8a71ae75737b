/**
 * Ending an ssh2 server connection with a reason the client shows: SSH_MSG_DISCONNECT
 * (RFC 4253 §11.1) with a description. ssh2's own end() sends the message with an empty
 * description; OpenSSH's client prints the description ("Received disconnect from …:
 * 11: session terminated: user alice is locked: …"), which is how a user behind `ssh -J`,
 * whose node session the proxy cannot write into, learns why it ended. The packet is
 * built as ssh2's Protocol.disconnect builds its own (a full packet, allowed even during a
 * key exchange), through ssh2 1.17.0's packet writer; test/integration/lock.test.ts checks
 * what OpenSSH prints.
 */
import type { Connection } from 'ssh2';
// A static import, so the shipped bundle (which contains ssh2) has it too.
import ssh2Utils from 'ssh2/lib/protocol/utils.js';

/** SSH_DISCONNECT_BY_APPLICATION. */
export const DISCONNECT_BY_APPLICATION = 11;

const SSH_MSG_DISCONNECT = 1;
/** OpenSSH prints at most 400 characters of it. */
const MAX_DESCRIPTION = 400;

interface PacketWriter {
  allocStartKEX: number;
  alloc(len: number, forceNew: boolean): Buffer;
  finalize(packet: Buffer, forceNew: boolean): Buffer;
}
interface Ssh2Protocol { _packetRW: { write: PacketWriter } }

/** Sends DISCONNECT with `description` (one line, printable) and ends the socket; as end() when the socket is gone. */
export function disconnectWithReason(conn: Connection, description: string, reason = DISCONNECT_BY_APPLICATION): void {
  const internals = conn as unknown as { _protocol?: Ssh2Protocol; _sock?: { writable?: boolean; end(): void } };
  const proto = internals._protocol;
  const sock = internals._sock;
  if (!proto || !sock?.writable) { conn.end(); return; }
  const text = Buffer.from(description.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_DESCRIPTION), 'utf8');
  const len = 1 + 4 + 4 + text.length + 4;
  const w = proto._packetRW.write;
  let p = w.allocStartKEX;
  const packet = w.alloc(len, true);
  packet[p++] = SSH_MSG_DISCONNECT;
  packet.writeUInt32BE(reason, p); p += 4;
  packet.writeUInt32BE(text.length, p); p += 4;
  text.copy(packet, p); p += text.length;
  packet.writeUInt32BE(0, p); // language tag: none
  ssh2Utils.sendPacket(proto, w.finalize(packet, true), true);
  sock.end();
}
