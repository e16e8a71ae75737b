/** `postern ls`: the nodes the logged-in user may reach, filtered by labels or a search. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { tshHome } from '../../client/paths.ts';
import { loadLogin } from '../../client/stored-login.ts';
import type { NodeListing } from '../../client/web-client.ts';
import { requestSigner } from '../../client/request-signing.ts';
import { writeLsCache } from '../../client/ls-cache.ts';
import { escapeControl, parseHostPort } from '../../core/text.ts';
import { DEFAULT_WEB_PORT } from '../../api/types.ts';
import { formatLabels } from '../../api/labels.ts';
import type { Labels } from '../../api/labels.ts';
import { formatOption, selectorArg } from '../options.ts';
import { out, outJson, table } from '../output.ts';

/** Options of `postern ls`. */
export interface LsOptions {
  search?: string;
  format: 'text' | 'json' | 'names';
  proxy?: string;
}

/** Parses `k=v` arguments (each may hold several, comma-separated) into one selector, in the one grammar (src/api/labels.ts). */
export function parseLabelArgs(args: string[]): Labels {
  return selectorArg(args.filter((a) => a.trim() !== '').join(','));
}

/** Splits `ls` arguments as tsh does: `k=v` are label selectors, other words are search keywords. */
export function splitLsArgs(args: string[]): { selectors: string[]; keywords: string[] } {
  const words = args.map((a) => a.trim()).filter(Boolean);
  return { selectors: words.filter((w) => w.includes('=')), keywords: words.filter((w) => !w.includes('=')) };
}

/** Does a node match every keyword (case-insensitive, in its name, address or a `k=v` label)? */
export function matchesKeywords(n: { name: string; addr: string; labels: Record<string, string> }, keywords: string[]): boolean {
  const fields = [n.name, n.addr, ...Object.entries(n.labels).map(([k, v]) => `${k}=${v}`)].map((f) => f.toLowerCase());
  return keywords.every((k) => fields.some((f) => f.includes(k.toLowerCase())));
}

/** Lists nodes through the proxy's web API, signed with the stored certificate's key. */
export async function runLs(args: string[], opts: LsOptions, deps: Deps, _state: RunState): Promise<void> {
  const home = tshHome(deps.env, deps.homeDir);
  const { selectors, keywords } = splitLsArgs(args);
  const labels = parseLabelArgs(selectors);
  const proxyHost = opts.proxy ? parseHostPort(opts.proxy, DEFAULT_WEB_PORT).host : undefined;
  const login = loadLogin(home, proxyHost, deps.clock.now());
  const { profile } = login;
  const web = parseHostPort(profile.webProxyAddr, DEFAULT_WEB_PORT);
  const client = await deps.clients.web({ host: web.host, port: web.port, caPin: profile.caPin, insecure: profile.insecure });
  let nodes: NodeListing[];
  try {
    nodes = await client.listNodes({ labels, ...(opts.search ? { search: opts.search } : {}) }, requestSigner(login.keyPair, login.certificate.raw, () => deps.clock.now()));
  } finally {
    await client.close();
  }
  nodes = [...nodes].filter((n) => matchesKeywords(n, keywords)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  try {
    writeLsCache(home, {
      proxy: profile.proxyHost, cluster: profile.cluster, names: nodes.map((n) => n.name),
      complete: Object.keys(labels).length === 0 && !opts.search && keywords.length === 0, now: deps.clock.now(),
    });
  } catch {
    // The cache only helps completion; a read-only home must not fail the listing.
  }
  if (opts.format === 'json') {
    outJson(deps, nodes.map((n) => ({ name: n.name, addr: n.addr, labels: n.labels })));
  } else if (opts.format === 'names') {
    for (const n of nodes) out(deps, escapeControl(n.name));
  } else {
    out(deps, table(['Node', 'Address', 'Labels'], nodes.map((n) => [n.name, n.addr, formatLabels(n.labels)])));
  }
}

/** Registers `postern ls`. */
export function registerLs(program: Command, deps: Deps, state: RunState): void {
  program.command('ls').description('list the nodes you may reach, optionally by label or keyword')
    .argument('[labels-or-keywords...]', 'label selectors key=value, and keywords found in a name, address or label (all must match)')
    .option('--search <text>', 'only nodes whose name, address or labels contain this text')
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addOption(formatOption(['text', 'json', 'names']))
    .addHelpText('after', `
Examples:
  postern ls                       every node you may reach
  postern ls env=prod team=db      nodes with both labels
  postern ls web                   nodes with "web" in their name, address or labels
  postern ls prod db env=eu        both keywords, and the label
  postern ls --format names        one name per line (also cached for shell completion)`)
    .action((selectors: string[], opts: LsOptions) => runLs(selectors, opts, deps, state));
}
