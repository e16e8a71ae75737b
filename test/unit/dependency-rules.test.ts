/**
 * The import rules in .dependency-cruiser.cjs can fail: each rule is run on a small tree with
 * one wrong import for it (and must report it), and the imports the architecture allows
 * must pass. A rule that silently matches nothing,
 * as a mistyped regex or option does, would otherwise let every wrong import through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { cruise } from 'dependency-cruiser';
import type { ICruiseResult, IConfiguration } from 'dependency-cruiser';

const root = resolve(import.meta.dirname, '../..');
const config = createRequire(import.meta.url)(join(root, '.dependency-cruiser.cjs')) as IConfiguration;

/** Files of the allowed tree: every import here is one the architecture permits. */
const allowed: Record<string, string> = {
  'src/core/errors.ts': 'export class PosternError extends Error {}\n',
  'src/core/fs.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
  'src/api/types.ts': 'export interface NodeInfo { name: string }\n',
  'src/api/errors.ts': "import { PosternError } from '../core/errors.ts';\nexport const E = PosternError;\n",
  'src/ssh/keys.ts': "import chalk from 'chalk';\nimport { PosternError } from '../core/errors.ts';\nexport const k = [chalk, PosternError];\n",
  'src/storage/backend.ts': "import { read } from '../core/fs.ts';\nexport const b = read;\n",
  'src/api/auth-client.ts': "import type { NodeInfo } from './types.ts';\nexport interface AuthClient { node: NodeInfo }\n",
  'src/auth/users.ts': "import { b } from '../storage/backend.ts';\nimport { k } from '../ssh/keys.ts';\nimport { E } from '../api/errors.ts';\nimport type { AuthClient } from '../api/auth-client.ts';\nexport const u = [b, k, E];\nexport type U = AuthClient;\n",
  // The proxy reaches auth only through the AuthClient contract in src/api.
  'src/proxy/ok.ts': "import type { AuthClient } from '../api/auth-client.ts';\nimport type { NodeInfo } from '../api/types.ts';\nimport { k } from '../ssh/keys.ts';\nexport type P = AuthClient | NodeInfo;\nexport const p = k;\n",
  // A devDependency is fine as a type (erased before run time).
  'src/proxy/types.ts': "import type { UserConfig } from 'vite';\nexport type V = UserConfig;\n",
  'src/client/ok.ts': "import type { NodeInfo } from '../api/types.ts';\nimport { k } from '../ssh/keys.ts';\nimport { read } from '../core/fs.ts';\nexport type N = NodeInfo;\nexport const c = [k, read];\n",
  'src/cli/program.ts': "import { ls } from './commands/ls.ts';\nimport { u } from '../auth/users.ts';\nimport { p } from '../proxy/ok.ts';\nimport { c } from '../client/ok.ts';\nexport const program = [ls, u, p, c];\n",
  'src/cli/run-state.ts': 'export type RunState = object;\n',
  'src/cli/commands/ls.ts': "import type { RunState } from '../run-state.ts';\nexport type S = RunState;\nexport const ls = 1;\n",
  'web/src/main.ts': "import type { NodeInfo } from '../../src/api/types.ts';\nimport { h } from 'preact';\nexport type N = NodeInfo;\nexport const m = h;\n",
  'test/helper.ts': "import { program } from '../src/cli/program.ts';\nexport const t = program;\n",
};

/**
 * One wrong import per rule: file → the rules it must break. A cycle is reported once, under
 * the rule name and all its files joined by `+` (see `violations`).
 */
const wrong: Record<string, { text: string; rules: string[] }> = {
  'src/core/bad-layer.ts': { text: "import type { NodeInfo } from '../api/types.ts';\nexport type N = NodeInfo;\n", rules: ['layer-core', 'core-only-builtins'] },
  'src/core/bad-npm.ts': { text: "import chalk from 'chalk';\nexport const c = chalk;\n", rules: ['core-only-builtins'] },
  'src/core/bad-missing.ts': { text: "import { x } from './missing.ts';\nexport const y = x;\n", rules: ['not-to-unresolvable', 'core-only-builtins'] },
  'src/api/bad-layer.ts': { text: "import { k } from '../ssh/keys.ts';\nexport const a = k;\n", rules: ['layer-api'] },
  'src/api/bad-builtin.ts': { text: "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n", rules: [] },
  'src/ssh/bad-layer.ts': { text: "import type { NodeInfo } from '../api/types.ts';\nexport type N = NodeInfo;\n", rules: ['layer-ssh'] },
  'src/storage/bad-layer.ts': { text: "import { u } from '../auth/users.ts';\nexport const s = u;\n", rules: ['layer-storage'] },
  'src/client/bad-layer.ts': { text: "import { p } from '../proxy/ok.ts';\nexport const c = p;\n", rules: ['layer-client'] },
  'src/auth/bad-layer.ts': { text: "import { program } from '../cli/program.ts';\nexport const a = program;\n", rules: ['layer-auth'] },
  'src/proxy/bad-layer.ts': { text: "import { u } from '../auth/users.ts';\nexport const p = u;\n", rules: ['layer-proxy'] },
  'src/proxy/bad-type.ts': { text: "import type { U } from '../auth/users.ts';\nexport type P = U;\n", rules: ['layer-proxy'] },
  'src/proxy/bad-storage.ts': { text: "import type { b } from '../storage/backend.ts';\nexport type B = typeof b;\n", rules: ['layer-proxy'] },
  'src/cli/bad-layer.ts': { text: "import { x } from '../extra/thing.ts';\nexport const c = x;\n", rules: ['layer-cli'] },
  'src/extra/thing.ts': { text: 'export const x = 1;\n', rules: [] },
  'src/cli/bad-dev.ts': { text: "import { build } from 'vite';\nexport const b = build;\n", rules: ['src-not-to-dev-dep'] },
  'src/client/bad-outside.ts': { text: "import { t } from '../../test/helper.ts';\nexport const c = t;\n", rules: ['src-not-to-outside'] },
  'web/src/bad-layer.ts': { text: "import { k } from '../../src/ssh/keys.ts';\nexport const w = k;\n", rules: ['web-only-api'] },
  'web/src/bad-reach.ts': { text: "import { r } from '../../src/api/bad-builtin.ts';\nexport const w = r;\n", rules: ['web-no-node-builtins'] },
  'src/ssh/cyc-a.ts': { text: "import { b } from './cyc-b.ts';\nexport const a = (): unknown => b;\n", rules: [] },
  'src/ssh/cyc-b.ts': { text: "import { a } from './cyc-a.ts';\nexport const b = (): unknown => a;\n", rules: [] },
  'src/cli/commands/cyc-cmd.ts': { text: "import { o } from '../cyc-output.ts';\nexport const c = (): unknown => o;\n", rules: [] },
  'src/cli/cyc-output.ts': { text: "import { c } from './commands/cyc-cmd.ts';\nexport const o = (): unknown => c;\n", rules: [] },
};

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  // The manifest tells dependencies from devDependencies. The packages are stubs in the
  // tree's own node_modules (as real ones are), so path options on node_modules apply.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', dependencies: { chalk: '1.0.0', preact: '1.0.0' }, devDependencies: { vite: '1.0.0' } }));
  for (const name of ['chalk', 'preact', 'vite']) {
    mkdirSync(join(dir, 'node_modules', name), { recursive: true });
    writeFileSync(join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', main: 'index.js' }));
    writeFileSync(join(dir, 'node_modules', name, 'index.js'), 'export default 1;\nexport const build = 1;\nexport const h = 1;\n');
  }
}

async function violations(dir: string): Promise<Set<string>> {
  const { tsConfig: _tsConfig, ...options } = config.options ?? {};
  const out = await cruise(['src', 'web/src', 'test'], { ...options, baseDir: dir, validate: true, ruleSet: { forbidden: config.forbidden } });
  const result = out.output as ICruiseResult;
  return new Set(result.summary.violations.map((v) => {
    const files = v.cycle ? [...new Set([v.from, ...v.cycle.map((c) => c.name)])].sort().join('+') : v.from;
    return `${v.rule.name} ${files}`;
  }));
}

test('every import rule reports its wrong import, and the allowed imports pass', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-deprules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeTree(dir, { ...allowed, ...Object.fromEntries(Object.entries(wrong).map(([p, w]) => [p, w.text])) });
  const found = await violations(dir);

  const expected = new Set(Object.entries(wrong).flatMap(([path, w]) => w.rules.map((r) => `${r} ${path}`)));
  expected.add('no-circular src/ssh/cyc-a.ts+src/ssh/cyc-b.ts');
  expected.add('no-circular src/cli/commands/cyc-cmd.ts+src/cli/cyc-output.ts');
  assert.deepEqual([...found].sort(), [...expected].sort());
  // A rule added to the config without a wrong import here would go untested.
  const tested = new Set([...expected].map((e) => e.split(' ')[0]));
  assert.deepEqual((config.forbidden ?? []).map((r) => r.name).filter((n) => !tested.has(n ?? '')), []);
});
