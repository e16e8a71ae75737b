/**
 * Port forwarding over an SSH connection to a node, as OpenSSH's `-L` and `-R` do it:
 *
 *   -L [bind:]port:host:hostport   listen here (127.0.0.1 unless a bind address is given);
 *                                  each connection becomes a `direct-tcpip` channel that
 *                                  the node's sshd connects to host:hostport
 *   -R [bind:]port:host:hostport   ask the node's sshd to listen (`tcpip-forward`, its
 *                                  loopback unless a bind address is given); each
 *                                  connection it accepts arrives as a `forwarded-tcpip`
 *                                  channel and is connected here to host:hostport
 *
 * Port 0 lets the listening side choose; the chosen port is reported back.
 */
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Client, ClientChannel, TcpConnectionDetails, AcceptConnection, RejectConnection } from 'ssh2';
import { UsageError, ConnectionError } from '../core/errors.ts';
import { escapeControl, formatHostPort } from '../core/text.ts';
import { pipeBoth } from '../core/pipe.ts';

/** Which way a forward goes. */
export type ForwardKind = 'L' | 'R';

/** A parsed `-L` or `-R` spec. */
export interface ForwardSpec {
  kind: ForwardKind;
  /** Where to listen; undefined means the default (loopback). */
  bindHost?: string;
  bindPort: number;
  /** Where the other side connects to. */
  host: string;
  hostPort: number;
  /** The spec as the user wrote it, for messages. */
  text: string;
}

/** Splits on ':' outside brackets, so `[::1]:80` stays one field. */
function splitFields(spec: string): string[] | undefined {
  const fields: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of spec) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0 || depth > 1) return undefined;
    if (ch === ':' && depth === 0) {
      fields.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (depth !== 0) return undefined;
  fields.push(cur);
  return fields;
}

function unbracket(host: string): string {
  const m = /^\[([^\]]*)\]$/.exec(host);
  return m ? m[1] : host;
}

function portField(text: string, allowZero: boolean): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) return undefined;
  return n;
}

const HOST_RE = /^[A-Za-z0-9._:%*-]+$/;

/**
 * Parses `[bind_address:]port:host:hostport` (IPv6 addresses in brackets); a usage error
 * (exit 2) says what is wrong. A bind address of `*` or an empty one means every interface,
 * `localhost` the loopback, as in OpenSSH.
 */
export function parseForwardSpec(spec: string, kind: ForwardKind): ForwardSpec {
  const bad = (why: string): UsageError => new UsageError(`invalid -${kind} "${escapeControl(spec)}": ${why}`, {
    hint: `Use -${kind} [bind_address:]port:host:hostport, e.g. -${kind} 8080:localhost:80`,
  });
  const fields = splitFields(spec);
  if (!fields || (fields.length !== 3 && fields.length !== 4)) throw bad('it needs three or four fields separated by ":"');
  const bindRaw = fields.length === 4 ? fields[0] : undefined;
  const [portText, hostRaw, hostPortText] = fields.slice(fields.length - 3) as [string, string, string];
  const bindPort = portField(portText, true);
  if (bindPort === undefined) throw bad(`"${escapeControl(portText)}" is not a port (0-65535)`);
  const hostPort = portField(hostPortText, false);
  if (hostPort === undefined) throw bad(`"${escapeControl(hostPortText)}" is not a port (1-65535)`);
  const host = unbracket(hostRaw);
  if (!host || !HOST_RE.test(host) || host === '*') throw bad(`"${escapeControl(hostRaw)}" is not a host`);
  let bindHost: string | undefined;
  if (bindRaw !== undefined) {
    const b = unbracket(bindRaw);
    if (b === '' || b === '*') bindHost = kind === 'L' ? '0.0.0.0' : '';
    else if (HOST_RE.test(b)) bindHost = b;
    else throw bad(`"${escapeControl(bindRaw)}" is not a bind address`);
  }
  return { kind, ...(bindHost !== undefined ? { bindHost } : {}), bindPort, host, hostPort, text: spec };
}

/** A forward that is listening. */
export interface ActiveForward {
  spec: ForwardSpec;
  /** The port that listens (the chosen one when the spec said 0). */
  port: number;
  close(): Promise<void>;
}

/** Reports what happens to forwarded connections (a failed channel, say); never fatal. */
export type ForwardLog = (message: string) => void;

/** Starts a `-L` forward: listens locally, opens a channel through the node per connection. */
export function startLocalForward(client: Client, spec: ForwardSpec, log: ForwardLog): Promise<ActiveForward> {
  const bindHost = spec.bindHost === undefined || spec.bindHost === 'localhost' ? '127.0.0.1' : spec.bindHost;
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.pause();
    const src = sock.remoteAddress ?? '127.0.0.1';
    const srcPort = sock.remotePort ?? 0;
    client.forwardOut(src, srcPort, spec.host, spec.hostPort, (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        log(`channel for -L ${spec.text} failed: ${escapeControl(err.message)}`);
        // Read and drop what the local client sent, then close with a FIN: destroying a
        // socket with unread bytes makes the kernel answer with a reset instead.
        sock.resume();
        sock.end();
        return;
      }
      if (sock.destroyed) { ch.close(); return; }
      pipeBoth(sock, ch);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: Error & { code?: string }) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EACCES' ? 'permission denied' : escapeControl(err.message);
      reject(new ConnectionError(`cannot listen on ${formatHostPort(bindHost, spec.bindPort)} for -L ${escapeControl(spec.text)}: ${why}`, { cause: err }));
    });
    server.listen(spec.bindPort, bindHost, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => log(`-L ${spec.text}: ${escapeControl(err.message)}`));
      const a = server.address();
      resolve({
        spec,
        port: typeof a === 'object' && a ? a.port : spec.bindPort,
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

/**
 * Remote forwards of one connection: `tcpip-forward` requests and the dispatch of the
 * `forwarded-tcpip` channels sshd opens back (matched by the port it listens on).
 */
export class RemoteForwards {
  private readonly client: Client;
  private readonly log: ForwardLog;
  private readonly byPort = new Map<number, ForwardSpec>();
  private readonly sockets = new Set<Socket>();

  constructor(client: Client, log: ForwardLog) {
    this.client = client;
    this.log = log;
    client.on('tcp connection', (info: TcpConnectionDetails, accept: AcceptConnection<ClientChannel>, reject: RejectConnection) => this.onConnection(info, accept, reject));
  }

  /** Asks the node's sshd to listen for a `-R` spec; resolves with the port it listens on. */
  add(spec: ForwardSpec): Promise<ActiveForward> {
    // OpenSSH sends "localhost" (loopback only) when no bind address is given.
    const bind = spec.bindHost ?? 'localhost';
    return new Promise((resolve, reject) => {
      this.client.forwardIn(bind, spec.bindPort, (err: Error | undefined, port: number) => {
        if (err) {
          reject(new ConnectionError(`the node refused the remote forward -R ${escapeControl(spec.text)}: ${escapeControl(err.message)}`, {
            cause: err, hint: 'The node\'s sshd must allow it (AllowTcpForwarding yes, GatewayPorts for a bind address) and the port must be free there',
          }));
          return;
        }
        // ssh2 reports the port sshd chose when the spec said 0, else the one asked for.
        const actual = port;
        this.byPort.set(actual, spec);
        resolve({
          spec,
          port: actual,
          close: () => new Promise<void>((done) => {
            this.byPort.delete(actual);
            try {
              this.client.unforwardIn(bind, actual, () => done());
            } catch {
              done(); // the connection is gone already
            }
          }),
        });
      });
    });
  }

  /** Closes every connection made for the forwards. */
  closeAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onConnection(info: TcpConnectionDetails, accept: AcceptConnection<ClientChannel>, reject: RejectConnection): void {
    const spec = this.byPort.get(info.destPort);
    if (!spec) { reject(); return; }
    const sock = netConnect({ host: spec.host, port: spec.hostPort, noDelay: true });
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      const ch = accept();
      pipeBoth(sock, ch);
    });
    sock.once('error', (err) => {
      this.log(`-R ${spec.text}: cannot connect to ${formatHostPort(spec.host, spec.hostPort)}: ${escapeControl(err.message)}`);
      reject();
    });
  }
}
