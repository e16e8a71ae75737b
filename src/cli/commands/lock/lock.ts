/**
 * `postern lock`: stop a user, a role, a login or a node at once, with a reason and an
 * optional expiry (as Teleport's `tctl lock`); `lock ls` and `lock rm` beside this file.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, durationArg, formatOption } from '../../options.ts';
import { out, outJson } from '../../output.ts';
import { UsageError } from '../../../core/errors.ts';
import { escapeControl } from '../../../core/text.ts';
import { LOCK_TARGET_KINDS, lockTargetText } from '../../../api/locks.ts';
import type { LockTarget } from '../../../api/locks.ts';
import { registerLockLs } from './ls.ts';
import { registerLockRm } from './rm.ts';

/** The options of `postern lock`. */
export interface LockOptions {
  user?: string;
  role?: string;
  login?: string;
  node?: string;
  reason?: string;
  ttl?: number;
  format: string;
  dataDir?: string;
}

/** The one target the flags name; a usage error for none or several. */
export function lockTargetFromFlags(opts: LockOptions): LockTarget {
  const given = LOCK_TARGET_KINDS.filter((k) => opts[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(given.length === 0 ? 'say what to lock' : `lock one thing at a time, not ${given.map((k) => `--${k}`).join(' and ')}`, {
      hint: 'Give exactly one of --user NAME, --role ROLE, --login LOGIN or --node NODE, e.g.  postern lock --user alice --reason "laptop stolen"',
    });
  }
  return { [given[0]]: opts[given[0]] };
}

/** Registers `postern lock` and its subcommands. */
export function registerLock(program: Command, deps: Deps, _state: RunState): void {
  const lock = program.command('lock').description('lock a user, a role, a login or a node: no new login or connection, live sessions cut (on the auth server)')
    .addOption(new Option('--user <name>', 'lock this user'))
    .addOption(new Option('--role <role>', 'lock every user who holds this role'))
    .addOption(new Option('--login <login>', 'lock this OS login on every node (e.g. root)'))
    .addOption(new Option('--node <node>', 'lock every connection to this node'))
    .addOption(new Option('--reason <text>', 'why: shown to the users the lock stops'))
    .addOption(new Option('--ttl <duration>', 'how long the lock lasts (e.g. 30m, 1h, 2d); until  lock rm  without').argParser(durationArg('--ttl')))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .addHelpText('after', `
A lock is in force at every proxy within seconds: the users it covers cannot log in (CLI or
web), get no new connection through the proxy (SSH listener, ssh -J, the TLS tunnel, the web
terminal, the signed web API), their web sessions end, and their live sessions are cut with
"session terminated: <target> is locked: <reason>". Whoever joined another user's session
(postern join, the web UI) is removed from it with "removed from session ID: …" while it goes
on for the others, and new joins are refused. A login lock covers connections as that
login; with ssh -J, where the proxy cannot see the node's login, it covers certificates that
carry it. Audited as lock.created and lock.deleted.

Examples:
  postern lock --user alice --reason "laptop stolen"
  postern lock --role contractors --reason "contract ended" --ttl 24h
  postern lock --node db1 --reason "maintenance" --ttl 30m
  postern lock ls
  postern lock rm 3f2a`)
    .action(async (opts: LockOptions) => {
      const target = lockTargetFromFlags(opts);
      const made = await withAdminClient(opts.dataDir, deps, (auth) => auth.createLock({
        target, ...(opts.reason !== undefined ? { reason: opts.reason } : {}), ...(opts.ttl !== undefined ? { ttlMs: opts.ttl } : {}),
      }));
      if (opts.format === 'json') { outJson(deps, made); return; }
      out(deps, `Locked ${escapeControl(lockTargetText(made.target))}${made.expiresAt ? ` until ${made.expiresAt}` : ' until removed'} (id ${made.id}).`);
      out(deps, `To remove it:  postern lock rm ${made.id}`);
    });
  registerLockLs(lock, deps);
  registerLockRm(lock, deps);
}
