// Import rules of the architecture (the style guide's "What may import what"), checked by
// `npm run lint:deps`, which `npm test` runs after typecheck: a wrong import fails CI.
//
// The folders are the layers:  core ← ssh, api, storage ← client, auth ← proxy ← cli.
// Type-only imports count as much as value imports (tsPreCompilationDeps below): the rules
// are about which machine and which layer a file may know, not about what survives type
// stripping.
// test/unit/dependency-rules.test.ts runs every rule on a tree with one wrong import for it:
// a new rule needs a wrong import there too.
'use strict';

const { builtinModules } = require('node:module');

/**
 * The layers under src/ and the other layers each may import (besides itself).
 * `cli` is the top: it may import anything, and nothing imports it.
 */
const layers = {
  // Errors, config, logger, durations: the base every other layer stands on, so it knows
  // none of them (and no npm package either, see core-only-builtins).
  core: [],
  // The HTTP contract shared by client, proxy, auth and the web UI: types and schemas that
  // every side agrees on, so it cannot depend on any one side.
  api: ['core'],
  // OpenSSH formats and ssh2 glue: used by client, proxy and auth alike, so it knows none of
  // them (and not the HTTP contract either: certificates do not depend on the API).
  ssh: ['core'],
  // One Backend interface and its implementations: only auth stores anything, and storage
  // must not know the rules auth applies to what it stores.
  storage: ['core'],
  // The engineer's machine: it talks to the proxy over the API and to nodes over SSH; it
  // never loads server code (proxy, auth, storage), which would also slow every command.
  client: ['api', 'ssh', 'core'],
  // The auth role: the only layer that owns storage.
  auth: ['storage', 'api', 'ssh', 'core'],
  // The proxy role: it reaches auth only through the AuthClient contract, never auth's
  // implementation or its storage, so it can run on another machine than auth.
  proxy: ['api', 'ssh', 'core'],
  // The commander tree wires everything together.
  cli: ['core', 'api', 'ssh', 'storage', 'client', 'auth', 'proxy'],
};

/** `^src/(a|b|c)/` for the given layer names. */
const under = (names) => `^src/(${names.join('|')})/`;

/** One rule per layer: from src/<layer>/ to any other src/ folder it does not list. */
const layerRules = Object.entries(layers).map(([layer, allowed]) => ({
  name: `layer-${layer}`,
  severity: 'error',
  comment:
    `src/${layer} may import only ` +
    (allowed.length ? `src/{${allowed.join(',')}}` : 'itself') +
    ' (STYLE.md, "What may import what")',
  from: { path: `^src/${layer}/` },
  to: {
    path: '^src/',
    pathNot: under([layer, ...allowed]),
  },
}));

/** Node's built-in modules, with and without the `node:` prefix, as a path regex. */
const builtins = `^(node:)?(${[...new Set(builtinModules.map((m) => m.replace(/^node:/, '')))]
  .map((m) => m.replace(/[/.]/g, '[$&]'))
  .join('|')})$`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      // core is imported by every layer and by the web UI's contract: an npm package there
      // would be loaded by every process and every command.
      name: 'core-only-builtins',
      severity: 'error',
      comment: 'src/core imports only Node built-ins and src/core',
      from: { path: '^src/core/' },
      to: { pathNot: '^src/core/', dependencyTypesNot: ['core'] },
    },
    {
      // Shipped code (src/ is in the npm package) must not lean on tests, benchmarks, build
      // scripts or the browser sources, none of which run in production.
      name: 'src-not-to-outside',
      severity: 'error',
      comment: 'src/ never imports test/, bench/, scripts/, web/ or bin/',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts|web|bin)/' },
    },
    {
      // The published package installs only `dependencies`: a value import of a
      // devDependency from src/ works here and breaks for users. Types are erased, so
      // `import type` from a devDependency (@types/*, ws) is fine.
      name: 'src-not-to-dev-dep',
      severity: 'error',
      comment: 'src/ imports devDependencies only with `import type` (users install only dependencies)',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      // The browser UI shares only the HTTP contract with the server; anything else from
      // src/ is server or CLI code that does not run in a browser.
      name: 'web-only-api',
      severity: 'error',
      comment: 'web/src imports only web/src, src/api and npm packages',
      from: { path: '^web/src/' },
      to: { path: '^(src|test|bench|scripts|bin)/', pathNot: '^src/api/' },
    },
    {
      // ...and not through src/api either: a Node built-in reached from the contract the
      // browser imports would break the web bundle.
      name: 'web-no-node-builtins',
      severity: 'error',
      comment: 'web/src must not reach a Node built-in, directly or through src/api',
      from: { path: '^web/src/' },
      to: { path: builtins, reachable: true },
    },
    {
      // A cycle makes load order matter and hides which module is the lower layer.
      name: 'no-circular',
      severity: 'error',
      comment: 'no circular imports',
      from: {},
      to: {
        circular: true,
      },
    },
    {
      // An import that does not resolve fails at run time (tsc catches most, not the ones
      // under `// @ts-` comments or in .js files).
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'every import resolves',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // `import type` and type-only re-exports are architecture too. This needs TypeScript's JS
    // API, which TypeScript 7 no longer has: the `typescript` devDependency is therefore 6.x
    // (for this tool and typescript-eslint), and `npm run typecheck` runs TypeScript 7 from
    // the `typescript-7` alias. Don't bump `typescript` to 7 until both tools support it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    // Generated and bundled output is not source. node_modules must not be excluded: that
    // would drop the edges to npm packages that core-only-builtins and src-not-to-dev-dep
    // check (doNotFollow above only stops cruising inside them).
    exclude: { path: '^(dist|web/dist)/' },
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'],
    },
  },
};
