/** Listen failures turned into errors a user can act on (port in use, no permission). */
import { ConfigError } from './errors.ts';
import { formatHostPort } from './text.ts';

/** Turns a listen failure into a ConfigError that names the address and the flag. */
export function listenError(err: unknown, addr: { host: string; port: number }, flag: string): ConfigError {
  const code = (err as { code?: string }).code;
  const where = formatHostPort(addr.host, addr.port);
  if (code === 'EADDRINUSE') return new ConfigError(`cannot listen on ${where}: the address is already in use`, { hint: `Stop what uses it, or choose another address with ${flag}` });
  if (code === 'EACCES') return new ConfigError(`cannot listen on ${where}: permission denied`, { hint: `Use a port above 1023, or choose another address with ${flag}` });
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`cannot listen on ${where}: no such local address`, { hint: `Choose an address of this machine with ${flag}` });
  return new ConfigError(`cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
}
