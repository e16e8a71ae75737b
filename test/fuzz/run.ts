/**
 * `npm run fuzz`: every property of targets.ts with POSTERN_FUZZ_RUNS inputs (100,000 by
 * default; POSTERN_FUZZ_SEED repeats a run). Prints each parser's inputs and time, and
 * exits 1 with fast-check's counterexample when a property fails. docs/security.md has the
 * figures of the last long run.
 */
import { TARGETS, closeWebUnderTest } from './targets.ts';

const runs = Number(process.env.POSTERN_FUZZ_RUNS ?? 100_000);
const seed = process.env.POSTERN_FUZZ_SEED ? Number(process.env.POSTERN_FUZZ_SEED) : Date.now() % 2 ** 31;
let failed = 0;
const start = Date.now();
process.stdout.write(`fuzzing ${TARGETS.length} parsers, ${runs} inputs per property, seed ${seed}\n`);
for (const t of TARGETS) {
  const t0 = Date.now();
  try {
    await t.run(runs, seed);
    process.stdout.write(`ok    ${t.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    failed++;
    process.stdout.write(`FAIL  ${t.name}\n${(err as Error).message}\n`);
  }
}
await closeWebUnderTest();
process.stdout.write(`${failed === 0 ? 'no failures' : `${failed} failed`} in ${((Date.now() - start) / 1000).toFixed(1)} s\n`);
process.exitCode = failed === 0 ? 0 : 1;
