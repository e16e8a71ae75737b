/** Listening with errors a user can act on (port in use, no permission). */
import type { FastifyInstance } from 'fastify';
import { listenError } from '../core/listen-error.ts';

/** Starts a fastify app on an address; resolves with the port it got. */
export async function listen(app: FastifyInstance, addr: { host: string; port: number }, flag: string): Promise<number> {
  try {
    await app.listen({ host: addr.host, port: addr.port });
  } catch (err) {
    throw listenError(err, addr, flag);
  }
  const a = app.server.address();
  return typeof a === 'object' && a ? a.port : addr.port;
}
