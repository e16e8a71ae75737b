/**
 * The fuzzing properties of test/fuzz/targets.ts, briefly (POSTERN_FUZZ_RUNS, 300 inputs
 * each by default, a few seconds in all): every parser of outside input answers or throws
 * a PosternError, and encoders round-trip. `npm run fuzz` runs them long.
 */
import { test } from 'node:test';
import { TARGETS } from '../fuzz/targets.ts';

const RUNS = Number(process.env.POSTERN_FUZZ_RUNS ?? 300);

for (const target of TARGETS) {
  test(target.name, () => target.run(RUNS));
}
