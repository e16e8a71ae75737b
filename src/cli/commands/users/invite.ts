/** The invite that `users add` and `users reset` print. */
import type { Deps } from '../../deps.ts';
import { out, outJson, colours } from '../../output.ts';
import type { InviteResult } from '../../../api/types.ts';

/**
 * Prints an invite as text (the link and the signup command with the CA pin the user needs
 * to trust the cluster's certificate) or JSON (with `caPin`).
 */
export function printInvite(deps: Deps, r: InviteResult, caPin: string, format: 'text' | 'json', verb: string): void {
  if (format === 'json') { outJson(deps, { ...r, caPin }); return; }
  const c = colours(deps);
  out(deps, `User ${c.bold(r.user)} ${verb}. Share this invite link with them; it works once and expires at ${r.expiresAt}:`);
  out(deps);
  out(deps, `  ${r.inviteUrl}`);
  out(deps);
  out(deps, 'They open it in a browser, or run:');
  out(deps);
  out(deps, `  postern signup ${r.inviteUrl} --ca-pin ${caPin}`);
}
