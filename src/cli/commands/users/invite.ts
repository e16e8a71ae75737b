/** The invite that `users add` and `users reset` print. */
import type { Deps } from '../../deps.ts';
import { out, outJson, colours } from '../../output.ts';
import type { InviteResult } from '../../../api/types.ts';

/** Prints an invite as text (the link and the signup command) or JSON. */
export function printInvite(deps: Deps, r: InviteResult, format: 'text' | 'json', verb: string): void {
  if (format === 'json') { outJson(deps, r); return; }
  const c = colours(deps);
  out(deps, `User ${c.bold(r.user)} ${verb}. Share this invite link with them; it works once and expires at ${r.expiresAt}:`);
  out(deps);
  out(deps, `  ${r.inviteUrl}`);
  out(deps);
  out(deps, `They open it in a browser, or run:  postern signup ${r.inviteUrl}`);
}
