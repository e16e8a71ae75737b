/**
 * The configuration of `postern serve`: a YAML file (--config) and flags, flags winning,
 * then defaults. Every value is checked here, so a bad one stops start-up with a clear error.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import YAML from 'yaml';
import { ConfigError, ValidationError } from '../../core/errors.ts';
import { parseDuration } from '../../core/durations.ts';
import { formatHostPort, parseHostPort } from '../../core/text.ts';
import { isPin } from '../../core/tls-pin.ts';
import type { ClusterSettings } from '../../api/auth-types.ts';
import { validateSettings } from '../../auth/settings.ts';
import { DEFAULT_AUTH_PORT, DEFAULT_PEER_PORT, DEFAULT_SSH_PORT, DEFAULT_WEB_PORT } from '../../api/types.ts';
import { parseStorageSpec } from '../../storage/open.ts';
import type { StorageSpec } from '../../storage/open.ts';
import { DEFAULT_SSH_LIMITS, DEFAULT_WEB_LIMITS, parseMaxStartups } from '../../proxy/conn-limits.ts';
import type { SshConnLimits, WebConnLimits } from '../../proxy/conn-limits.ts';

/** What the flags of `serve` can say (all optional: unset means "not given"). */
export interface ServeFlags {
  config?: string;
  dataDir?: string;
  webAddr?: string;
  sshAddr?: string;
  authAddr?: string;
  publicAddr?: string;
  clusterName?: string;
  roles?: string;
  authServer?: string;
  joinToken?: string;
  caPin?: string;
  certFile?: string;
  keyFile?: string;
  secondFactor?: string;
  storage?: string;
  peerAddr?: string;
  peerPublicAddr?: string;
  loginGraceTime?: string;
  maxStartups?: string;
  perSourceMaxStartups?: string;
  maxAuthTries?: string;
  webMaxConnectionsPerSource?: string;
  webHeaderTimeout?: string;
}

/** The resolved configuration. */
export interface ServeConfig {
  dataDir: string;
  webAddr: { host: string; port: number };
  sshAddr: { host: string; port: number };
  authAddr: { host: string; port: number };
  publicAddr?: { host: string; port?: number };
  clusterName: string;
  roles: { auth: boolean; proxy: boolean };
  /** With --roles proxy: the auth servers, one or several on one database (the proxy fails over between them). */
  authServers?: Array<{ host: string; port: number }>;
  joinToken?: string;
  caPin?: string;
  certFile?: string;
  keyFile?: string;
  settings: Partial<ClusterSettings>;
  /** Where auth keeps its data: --storage, `storage:`, $POSTERN_STORAGE, else SQLite in the data dir. */
  storage: StorageSpec;
  /** The proxy's peer listener for joins relayed by other proxies (default: the web host, port 3021; off: none). */
  peerAddr?: { host: string; port: number };
  /** Where other proxies reach it. */
  peerPublicAddr?: { host: string; port?: number };
  /** sshd's defences on the SSH listener (src/proxy/conn-limits.ts). */
  sshLimits: SshConnLimits;
  /** The web port's per-source cap and header timeout. */
  webLimits: WebConnLimits;
}

const FILE_KEYS: Record<string, keyof ServeFlags | 'cluster'> = {
  data_dir: 'dataDir', web_addr: 'webAddr', ssh_addr: 'sshAddr', auth_addr: 'authAddr', public_addr: 'publicAddr',
  cluster_name: 'clusterName', roles: 'roles', auth_server: 'authServer', join_token: 'joinToken', ca_pin: 'caPin',
  cert_file: 'certFile', key_file: 'keyFile', cluster: 'cluster', storage: 'storage',
  peer_addr: 'peerAddr', peer_public_addr: 'peerPublicAddr',
  login_grace_time: 'loginGraceTime', max_startups: 'maxStartups', per_source_max_startups: 'perSourceMaxStartups',
  max_auth_tries: 'maxAuthTries', web_max_connections_per_source: 'webMaxConnectionsPerSource', web_header_timeout: 'webHeaderTimeout',
};

function count(text: string | undefined, flag: string, dflt: number): number {
  if (text === undefined) return dflt;
  if (!/^\d{1,7}$/.test(text.trim()) || Number(text) < 1) throw new ConfigError(`${flag} must be a whole number of at least 1, not "${text}"`);
  return Number(text);
}

function duration(text: string | undefined, flag: string, dflt: number): number {
  if (text === undefined) return dflt;
  try { return parseDuration(text, flag); } catch (err) { throw new ConfigError((err as Error).message, { hint: (err as ValidationError).hint }); }
}

/** The listeners' connection limits from flags and file, defaults where not given. */
function connLimits(pick: (k: keyof ServeFlags) => string | undefined): { sshLimits: SshConnLimits; webLimits: WebConnLimits } {
  const ms = pick('maxStartups');
  let maxStartups = DEFAULT_SSH_LIMITS.maxStartups;
  if (ms !== undefined) {
    try { maxStartups = parseMaxStartups(ms); } catch (err) { throw new ConfigError((err as Error).message, { hint: (err as ValidationError).hint }); }
  }
  return {
    sshLimits: {
      loginGraceMs: duration(pick('loginGraceTime'), '--login-grace-time', DEFAULT_SSH_LIMITS.loginGraceMs),
      maxStartups,
      perSourceMaxStartups: count(pick('perSourceMaxStartups'), '--per-source-max-startups', DEFAULT_SSH_LIMITS.perSourceMaxStartups),
      maxAuthTries: count(pick('maxAuthTries'), '--max-auth-tries', DEFAULT_SSH_LIMITS.maxAuthTries),
    },
    webLimits: {
      maxConnectionsPerSource: count(pick('webMaxConnectionsPerSource'), '--web-max-connections-per-source', DEFAULT_WEB_LIMITS.maxConnectionsPerSource),
      headerTimeoutMs: duration(pick('webHeaderTimeout'), '--web-header-timeout', DEFAULT_WEB_LIMITS.headerTimeoutMs),
    },
  };
}

function addr(text: string, port: number, what: string): { host: string; port: number } {
  try {
    return parseHostPort(text, port);
  } catch (err) {
    throw new ConfigError(`${what}: ${(err as Error).message}`, { hint: (err as ValidationError).hint });
  }
}

function durationSetting(v: unknown, key: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    try { return parseDuration(v, key); } catch (err) { throw new ConfigError(`cluster.${key}: ${(err as Error).message}`); }
  }
  throw new ConfigError(`cluster.${key} must be a duration such as 30h`);
}

function clusterSettings(raw: unknown): Partial<ClusterSettings> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('"cluster" in the config file must be a mapping');
  const r = raw as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k === 'max_session_ttl') patch.max_session_ttl = durationSetting(v, k);
    else if (k === 'lockout') {
      const l = (v ?? {}) as Record<string, unknown>;
      for (const lk of Object.keys(l)) if (!['attempts', 'window', 'duration'].includes(lk)) throw new ConfigError(`unknown key cluster.lockout.${lk}`, { hint: 'Known keys: attempts, window, duration' });
      if (l.attempts !== undefined) patch.lockout_attempts = l.attempts;
      if (l.window !== undefined) patch.lockout_window = durationSetting(l.window, 'lockout.window');
      if (l.duration !== undefined) patch.lockout_duration = durationSetting(l.duration, 'lockout.duration');
    } else patch[k] = v;
  }
  try {
    return validateSettings(patch as Partial<ClusterSettings>);
  } catch (err) {
    throw new ConfigError(`in the config file: ${(err as Error).message}`, { hint: (err as ValidationError).hint });
  }
}

/** Reads the config file (if any), merges flags over it, fills defaults and checks everything. */
export function resolveServeConfig(flags: ServeFlags, defaultDataDir: string, env: Record<string, string | undefined> = {}): ServeConfig {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    let text: string;
    try { text = readFileSync(flags.config, 'utf8'); } catch (err) {
      throw new ConfigError(`cannot read the config file ${flags.config}: ${(err as Error).message}`);
    }
    try { file = (YAML.parse(text) ?? {}) as Record<string, unknown>; } catch (err) {
      throw new ConfigError(`the config file ${flags.config} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof file !== 'object' || Array.isArray(file)) throw new ConfigError(`the config file ${flags.config} must be a YAML mapping`);
    for (const k of Object.keys(file)) {
      if (!(k in FILE_KEYS)) throw new ConfigError(`unknown key "${k}" in ${flags.config}`, { hint: `Known keys: ${Object.keys(FILE_KEYS).join(', ')}` });
    }
  }
  const pick = (k: keyof ServeFlags): string | undefined => {
    const fileKey = Object.keys(FILE_KEYS).find((fk) => FILE_KEYS[fk] === k);
    const fromFile = fileKey ? file[fileKey] : undefined;
    if (flags[k] !== undefined) return flags[k];
    if (fromFile === undefined || fromFile === null) return undefined;
    if (Array.isArray(fromFile)) return fromFile.map(String).join(',');
    if (typeof fromFile === 'object') throw new ConfigError(`"${fileKey}" in ${flags.config} must be a string or a list, not a mapping`);
    return String(fromFile as string | number | boolean);
  };
  const rolesText = pick('roles') ?? 'auth,proxy';
  const roleList = rolesText.split(',').map((s) => s.trim()).filter(Boolean);
  for (const r of roleList) if (r !== 'auth' && r !== 'proxy') throw new ConfigError(`unknown role "${r}" in --roles`, { hint: 'Roles are auth and proxy, e.g. --roles auth,proxy' });
  const roles = { auth: roleList.includes('auth'), proxy: roleList.includes('proxy') };
  if (!roles.auth && !roles.proxy) throw new ConfigError('--roles names no role', { hint: 'Use --roles auth,proxy, auth or proxy' });

  const settings = clusterSettings(file.cluster);
  const sf = flags.secondFactor;
  if (sf !== undefined) {
    if (sf !== 'otp' && sf !== 'off') throw new ConfigError(`--second-factor must be otp or off, not "${sf}"`);
    settings.second_factor = sf;
  }
  const publicText = pick('publicAddr');
  const dataDir = pick('dataDir') ?? defaultDataDir;
  const storageText = pick('storage');
  if (storageText && !roles.auth) throw new ConfigError('--storage is for the auth role; a proxy alone keeps no cluster data', { hint: 'Leave --storage out with --roles proxy' });
  const cfg: ServeConfig = {
    dataDir,
    storage: parseStorageSpec(storageText ?? env.POSTERN_STORAGE, dataDir),
    webAddr: addr(pick('webAddr') ?? `0.0.0.0:${DEFAULT_WEB_PORT}`, DEFAULT_WEB_PORT, '--web-addr'),
    sshAddr: addr(pick('sshAddr') ?? `0.0.0.0:${DEFAULT_SSH_PORT}`, DEFAULT_SSH_PORT, '--ssh-addr'),
    authAddr: addr(pick('authAddr') ?? `127.0.0.1:${DEFAULT_AUTH_PORT}`, DEFAULT_AUTH_PORT, '--auth-addr'),
    clusterName: pick('clusterName') ?? hostname().toLowerCase(),
    roles,
    settings,
    ...connLimits(pick),
  };
  if (publicText) {
    const m = /:(\d+)$/.test(publicText) && !/^[^[]*:.*:/.test(publicText);
    const a = addr(publicText, DEFAULT_WEB_PORT, '--public-addr');
    cfg.publicAddr = m ? a : { host: a.host };
  }
  // The peer listener: on the web host, port 3021 (port 0, an ephemeral port, when the web port is 0, as in tests).
  const peerText = pick('peerAddr');
  if (peerText !== 'off') {
    cfg.peerAddr = addr(peerText ?? formatHostPort(cfg.webAddr.host, cfg.webAddr.port === 0 ? 0 : DEFAULT_PEER_PORT), DEFAULT_PEER_PORT, '--peer-addr');
    const peerPublic = pick('peerPublicAddr');
    if (peerPublic) {
      const a = addr(peerPublic, DEFAULT_PEER_PORT, '--peer-public-addr');
      cfg.peerPublicAddr = /:(\d+)$/.test(peerPublic) && !/^[^[]*:.*:/.test(peerPublic) ? a : { host: a.host };
    }
  }
  const authServer = pick('authServer');
  if (authServer) {
    // A comma list on the command line, a YAML list (joined with commas by pick) in the file.
    const list = authServer.split(',').map((t) => t.trim()).filter(Boolean);
    if (list.length === 0) throw new ConfigError('--auth-server names no address', { hint: 'e.g. --auth-server auth1:3025,auth2:3025' });
    cfg.authServers = list.map((t) => addr(t, DEFAULT_AUTH_PORT, '--auth-server'));
    const seen = new Set(cfg.authServers.map((a) => `${a.host}:${a.port}`));
    if (seen.size !== cfg.authServers.length) throw new ConfigError('--auth-server names the same address twice');
  }
  cfg.joinToken = pick('joinToken');
  cfg.caPin = pick('caPin');
  cfg.certFile = pick('certFile');
  cfg.keyFile = pick('keyFile');
  if (cfg.caPin && !isPin(cfg.caPin)) throw new ConfigError(`invalid --ca-pin "${cfg.caPin}"`, { hint: 'A pin looks like sha256:<64 hex digits>' });
  if (!roles.auth && !cfg.authServers) {
    throw new ConfigError('a proxy without the auth role needs --auth-server', { hint: 'postern serve --roles proxy --auth-server AUTH_HOST:3025 --join-token TOKEN --ca-pin sha256:…' });
  }
  if (roles.auth && cfg.authServers) throw new ConfigError('--auth-server is for --roles proxy alone; this process runs auth itself');
  return cfg;
}
