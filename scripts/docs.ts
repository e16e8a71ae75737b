/**
 * Generates man pages (one per command) and shell completions (bash, zsh, fish) from the
 * commander tree, so they can never drift from the code. `npm run gen-docs` writes them;
 * a unit test fails when the checked-in files are stale.
 */
import type { Command, Option } from 'commander';
import { PassThrough } from 'node:stream';
import { buildProgram } from '../src/cli/program.ts';
import type { Deps } from '../src/cli/deps.ts';
import { noSignals, realClients } from '../src/cli/deps.ts';
import { VERSION } from '../src/core/version.ts';
import { LS_CACHE_SED } from '../src/client/ls-cache.ts';
import { SETTING_KEYS } from '../src/cli/commands/settings/values.ts';

/**
 * Commands whose arguments are node names; completions offer the names of the last
 * `postern ls` from $TSH_HOME/ls-cache/*.json (read with sed, never the network), after a
 * `login@` when one was typed.
 */
export const NODE_COMMANDS = ['ssh', 'ls', 'nodes rm', 'nodes update', 'nodes renew'];

/** Commands whose argument is a recording id: the ids of the last `postern recordings ls` ($TSH_HOME/play-cache.json). */
export const RECORDING_COMMANDS = ['play'];

/** The values a setting takes when they are a short list (`otp | off`); others complete nothing. */
export function settingValues(): Record<string, string[]> {
  return Object.fromEntries(Object.entries(SETTING_KEYS)
    .filter(([, v]) => /^[a-z]+( \| [a-z]+)+$/.test(v))
    .map(([k, v]) => [k, v.split(' | ')]));
}

/** Does an option take a value? */
const takesValue = (o: Option): boolean => o.required || o.optional;

function quietDeps(): Deps {
  const s = new PassThrough();
  return { io: { stdin: new PassThrough(), stdout: s, stderr: s }, env: {}, homeDir: '/home/user', clock: { now: () => new Date(0) }, selfCommand: 'postern',
    signals: noSignals, openTerminal: () => undefined, clients: realClients };
}

/** Every command in the tree with its full path, depth first. */
export function walk(cmd: Command, path: string[] = []): Array<{ cmd: Command; path: string[] }> {
  const here = path.length === 0 ? [] : [{ cmd, path }];
  return [...here, ...cmd.commands.filter((c) => !(c as unknown as { _hidden: boolean })._hidden).flatMap((c) => walk(c, [...path, c.name()]))];
}

const roff = (s: string): string => s.replace(/\\/g, '\\\\').replace(/-/g, '\\-').replace(/^\./gm, '\\&.').replace(/^'/gm, "\\&'");

function optionLine(o: Option): string {
  return o.flags;
}

function usage(cmd: Command, path: string[]): string {
  return `postern ${path.join(' ')} ${cmd.usage()}`.trim();
}

/**
 * What `--help` prints after the options (examples, notes: addHelpText('after')), so the
 * man page carries the same text from the same source.
 */
export function helpEpilogue(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => { text += s; }, writeErr: (s) => { text += s; } });
  cmd.outputHelp();
  return text.startsWith(cmd.helpInformation()) ? text.slice(cmd.helpInformation().length).replace(/^\n+|\s+$/g, '') : '';
}

/** The man page of one command. */
export function manPage(cmd: Command, path: string[]): string {
  const name = ['postern', ...path].join('-');
  const lines = [
    `.TH ${name.toUpperCase()} 1 "" "postern ${VERSION}" "Postern Manual"`,
    '.SH NAME',
    `${roff(name)} \\- ${roff(cmd.description())}`,
    '.SH SYNOPSIS',
    `.B ${roff(usage(cmd, path))}`,
  ];
  const args = (cmd as unknown as { registeredArguments: Array<{ name(): string; description: string; required: boolean }> }).registeredArguments ?? [];
  if (args.length) {
    lines.push('.SH ARGUMENTS');
    for (const a of args) lines.push('.TP', `.I ${roff(a.name())}`, roff(a.description || (a.required ? 'required' : 'optional')));
  }
  const sub = cmd.commands;
  if (sub.length) {
    lines.push('.SH COMMANDS');
    for (const s of sub) lines.push('.TP', `.B ${roff(s.name())}`, `${roff(s.description())} See \\fBpostern\\-${roff([...path, s.name()].join('-'))}\\fR(1).`);
  }
  const opts = cmd.options;
  if (opts.length) {
    lines.push('.SH OPTIONS');
    for (const o of opts) {
      let text = o.description;
      if (o.argChoices) text += ` One of: ${o.argChoices.join(', ')}.`;
      if (o.defaultValue !== undefined && o.defaultValueDescription === undefined && typeof o.defaultValue !== 'object') text += ` Default: ${String(o.defaultValue)}.`;
      if (o.defaultValueDescription) text += ` Default: ${o.defaultValueDescription}.`;
      lines.push('.TP', `.B ${roff(optionLine(o))}`, roff(text));
    }
  }
  const epilogue = helpEpilogue(cmd);
  if (epilogue) lines.push('.SH NOTES AND EXAMPLES', '.nf', roff(epilogue), '.fi');
  lines.push('.SH ENVIRONMENT', '.TP', '.B TSH_HOME', 'Where logins are kept (default ~/.tsh).', '.TP', '.B POSTERN_DATA_DIR',
    'The data directory of postern serve.', '.TP', '.B SSH_AUTH_SOCK', 'The ssh\\-agent that login adds keys to.', '.TP', '.B NO_COLOR', 'Turns colours off.');
  lines.push('.SH EXIT STATUS', '0 on success, 1 on failure, 2 on a usage error, 4 when not logged in or the certificate expired, 130 when cancelled, 255 when a connection fails.');
  lines.push('.SH SEE ALSO', ['postern', ...(path.length > 1 ? [path.slice(0, -1).join('-')] : [])].map((p) => `\\fB${roff(p === 'postern' ? p : `postern-${p}`)}\\fR(1)`).join(', ') + ', \\fBssh\\fR(1), \\fBsshd_config\\fR(5)');
  return lines.join('\n') + '\n';
}

function top(): Promise<Command> {
  return buildProgram(quietDeps(), { exitCode: 0 });
}

/**
 * The bash completion script. It reads the line itself (COMP_LINE up to COMP_POINT, split
 * on blanks) so that the characters of COMP_WORDBREAKS (`:`, `=`, and `@` where it was
 * added) do not cut `user@host` or `--format=json` into pieces, completes the whole word,
 * and then drops the part before bash's own current word from each candidate, so what bash
 * inserts keeps the `user@`.
 */
export function bashCompletion(program: Command): string {
  const all = walk(program);
  const cases = all.map(({ cmd, path }) => {
    const words = [...cmd.commands.map((c) => c.name()), ...cmd.options.map((o) => o.long ?? o.short ?? '')].filter(Boolean);
    return `    "${path.join(' ')}") words="${words.join(' ')}" ;;`;
  });
  const rootWords = [...program.commands.map((c) => c.name()), ...program.options.map((o) => o.long ?? '')].filter(Boolean).join(' ');
  // The options that take a value, by command: their choices, or nothing (then files, by -o default).
  const optionCases = all.flatMap(({ cmd, path }) => cmd.options.filter(takesValue).map((o) => {
    const names = [o.long, o.short].filter(Boolean).join('|');
    const key = names.split('|').map((n) => `"${path.join(' ')}|${n}"`).join('|');
    return `    ${key}) values="${(o.argChoices ?? []).join(' ')}" ;;`;
  }));
  const values = settingValues();
  return `# bash completion for postern (generated by npm run gen-docs; do not edit)
_postern() {
  local line cur bcur prev path="" i words values opt="" vpre=""
  local -a W
  if [[ -n "\${COMP_LINE+x}" ]]; then
    line="\${COMP_LINE:0:\${COMP_POINT:-\${#COMP_LINE}}}"
    read -ra W <<< "$line"
    [[ \${#W[@]} -eq 0 || "$line" == *[[:space:]] ]] && W+=("")
  else
    W=("\${COMP_WORDS[@]:0:COMP_CWORD+1}")
  fi
  cur="\${W[\${#W[@]}-1]}"
  prev=""; (( \${#W[@]} > 1 )) && prev="\${W[\${#W[@]}-2]}"
  bcur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < \${#W[@]} - 1; i++)); do
    case "\${W[i]}" in -*) ;; *) path="\${path:+$path }\${W[i]}" ;; esac
  done
  while :; do
    case "$path" in
${cases.join('\n')}
    "") words="${rootWords}" ;;
    *) path="\${path% *}"; [[ "$path" == *" "* ]] || { case "$path" in ${program.commands.map((c) => c.name()).join('|')}) ;; *) path="" ;; esac; }; continue ;;
    esac
    break
  done
  # The value of an option: --opt=VALUE, or the word after --opt.
  if [[ "$cur" == --*=* ]]; then opt="\${cur%%=*}"; vpre="$opt="
  elif [[ "$prev" == -* && "$prev" != *=* ]]; then opt="$prev"
  fi
  if [[ -n "$opt" ]]; then
    values="-"
    case "$path|$opt" in
${optionCases.join('\n')}
    esac
    if [[ "$values" != "-" ]]; then
      COMPREPLY=( $(compgen -P "$vpre" -W "$values" -- "\${cur#"$vpre"}") )
      _postern_trim
      return
    fi
  fi
  if [[ "$cur" != -* ]]; then
    case "$path" in
    ${NODE_COMMANDS.map((c) => `"${c}"`).join('|')})
      local pre=""
      [[ "$cur" == *@* ]] && pre="\${cur%@*}@"
      COMPREPLY=( $(compgen -P "$pre" -W "$(_postern_cache "ls-cache/*.json")" -- "\${cur#"$pre"}") )
      _postern_trim
      return ;;
    ${RECORDING_COMMANDS.map((c) => `"${c}"`).join('|')})
      COMPREPLY=( $(compgen -W "$(_postern_cache play-cache.json)" -- "$cur") )
      return ;;
    "settings set")
      case "$prev" in
      set) COMPREPLY=( $(compgen -W "${Object.keys(SETTING_KEYS).join(' ')}" -- "$cur") ); return ;;
${Object.entries(values).map(([k, v]) => `      ${k}) COMPREPLY=( $(compgen -W "${v.join(' ')}" -- "$cur") ); return ;;`).join('\n')}
      esac ;;
    esac
  fi
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  _postern_trim
}
# Bash replaces only its own current word, which starts after the last COMP_WORDBREAKS
# character: drop what comes before it from each candidate.
_postern_trim() {
  local strip="\${cur%"$bcur"}"
  [[ -n "$strip" && "$cur" == *"$bcur" ]] && COMPREPLY=( "\${COMPREPLY[@]#"$strip"}" )
}
# Names in cache files under TSH_HOME: nodes of the last \`postern ls\`, ids of the last
# \`postern recordings ls\` (the files only, no network).
_postern_cache() {
  local f
  for f in "\${TSH_HOME:-$HOME/.tsh}"/$1; do
    [[ -r "$f" ]] && sed -n '${LS_CACHE_SED}' "$f"
  done
}
complete -o default -F _postern postern
`;
}

/** The zsh argument specs of a command without subcommands: nodes, recordings, settings, or files. */
function leafArgs(path: string): string {
  if (NODE_COMMANDS.includes(path)) return "'*:node:_postern_nodes'";
  if (RECORDING_COMMANDS.includes(path)) return "'1:recording:_postern_recording_ids'";
  if (path === 'settings set') return `'1:setting:(${Object.keys(SETTING_KEYS).join(' ')})' '2:value:_postern_setting_value'`;
  return "'*:file:_files'";
}

/** The zsh completion script. */
export function zshCompletion(program: Command): string {
  const fns = walk(program).map(({ cmd, path }) => {
    const specs = [
      ...cmd.options.map((o) => `'${o.long ?? o.short}[${o.description.replace(/'/g, "'\\''").replace(/[[\]]/g, '')}]${o.required || o.optional ? ':value:' + (o.argChoices ? `(${o.argChoices.join(' ')})` : '') : ''}'`),
    ];
    const subs = cmd.commands.map((c) => `'${c.name()}:${c.description().replace(/'/g, "'\\''").replace(/:/g, '\\:')}'`);
    return `_postern_${path.join('_').replace(/-/g, '_')}() {\n  ${subs.length ? `local -a subs=(${subs.join(' ')})\n  _arguments -C ${specs.join(' ')} '1: :->cmd' '*:: :->args'\n  case $state in cmd) _describe command subs ;; args) local f=_postern_${path.join('_').replace(/-/g, '_')}_\${words[1]//-/_}; (( $+functions[$f] )) && $f ;; esac` : `_arguments ${specs.join(' ')} ${leafArgs(path.join(' '))}`}\n}`;
  });
  const rootSubs = program.commands.map((c) => `'${c.name()}:${c.description().replace(/'/g, "'\\''").replace(/:/g, '\\:')}'`);
  return `#compdef postern
# zsh completion for postern (generated by npm run gen-docs; do not edit)
# Node names from the last \`postern ls\` (the cache files only, no network).
_postern_nodes() {
  local -a nodes
  local f
  for f in \${TSH_HOME:-$HOME/.tsh}/ls-cache/*.json(N); do
    nodes+=(\${(f)"$(sed -n '${LS_CACHE_SED}' $f)"})
  done
  compset -P '*@'
  compadd -a nodes
}
# Recording ids from the last \`postern recordings ls\` (the cache file only).
_postern_recording_ids() {
  local -a ids
  local f=\${TSH_HOME:-$HOME/.tsh}/play-cache.json
  [[ -r $f ]] && ids=(\${(f)"$(sed -n '${LS_CACHE_SED}' $f)"})
  compadd -a ids
}
# The values of a setting that takes one of a few.
_postern_setting_value() {
  case $words[2] in
${Object.entries(settingValues()).map(([k, v]) => `  ${k}) compadd ${v.join(' ')} ;;`).join('\n')}
  esac
}
${fns.join('\n')}
_postern() {
  local -a subs=(${rootSubs.join(' ')})
  _arguments -C '--debug[print stack traces]' '--help[show help]' '--version[print the version]' '1: :->cmd' '*:: :->args'
  case $state in cmd) _describe command subs ;; args) local f=_postern_\${words[1]//-/_}; (( $+functions[$f] )) && $f ;; esac
}
_postern "$@"
`;
}

/** The fish completion script. */
export function fishCompletion(program: Command): string {
  const esc = (s: string): string => s.replace(/'/g, "\\'");
  const lines = [
    '# fish completion for postern (generated by npm run gen-docs; do not edit)',
    'complete -c postern -f',
    '# Node names from the last `postern ls` (the cache files only, no network).',
    'function __postern_nodes',
    '    set -l home $TSH_HOME',
    '    test -n "$home"; or set home ~/.tsh',
    '    set -l pre (string match -r \'^.*@\' -- (commandline -ct))',
    '    for f in $home/ls-cache/*.json',
    `        sed -n '${LS_CACHE_SED}' $f | string replace -r '^' -- "$pre"`,
    '    end',
    'end',
  ];
  lines.push('# Recording ids from the last `postern recordings ls` (the cache file only).', 'function __postern_recordings',
    '    set -l home $TSH_HOME', '    test -n "$home"; or set home ~/.tsh', `    test -r $home/play-cache.json; and sed -n '${LS_CACHE_SED}' $home/play-cache.json`, 'end');
  const seen = (path: string): string => path.split(' ').map((p) => `__fish_seen_subcommand_from ${p}`).join('; and ');
  for (const name of NODE_COMMANDS) lines.push(`complete -c postern -n '${seen(name)}; and not __fish_seen_subcommand_from proxy' -a '(__postern_nodes)'`);
  for (const name of RECORDING_COMMANDS) lines.push(`complete -c postern -n '${seen(name)}' -a '(__postern_recordings)'`);
  lines.push(`complete -c postern -n '${seen('settings set')}; and test (count (commandline -opc)) -eq 3' -a '${Object.keys(SETTING_KEYS).join(' ')}'`);
  for (const [k, v] of Object.entries(settingValues())) lines.push(`complete -c postern -n '${seen('settings set')}; and __fish_seen_subcommand_from ${k}' -a '${v.join(' ')}'`);
  for (const c of program.commands) lines.push(`complete -c postern -n '__fish_use_subcommand' -a '${c.name()}' -d '${esc(c.description())}'`);
  for (const { cmd, path } of walk(program)) {
    const cond = path.map((p) => `__fish_seen_subcommand_from ${p}`).join('; and ');
    for (const s of cmd.commands) lines.push(`complete -c postern -n '${cond}' -a '${s.name()}' -d '${esc(s.description())}'`);
    for (const o of cmd.options) {
      if (!o.long) continue;
      const choices = o.argChoices ? ` -r -a '${o.argChoices.join(' ')}'` : o.required || o.optional ? ' -r' : '';
      lines.push(`complete -c postern -n '${cond}' -l ${o.long.replace(/^--/, '')}${choices} -d '${esc(o.description)}'`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Every generated file, path relative to the repo root, and its content. */
export async function generateDocs(): Promise<Map<string, string>> {
  const program = await top();
  const files = new Map<string, string>();
  files.set('man/postern.1', manPage(program, []).replace(/^\.TH POSTERN 1/, '.TH POSTERN 1'));
  for (const { cmd, path } of walk(program)) files.set(`man/postern-${path.join('-')}.1`, manPage(cmd, path));
  files.set('completions/postern.bash', bashCompletion(program));
  files.set('completions/_postern', zshCompletion(program));
  files.set('completions/postern.fish', fishCompletion(program));
  return files;
}
