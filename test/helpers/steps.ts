/**
 * Steps of one scenario that build on each other (a signed-up user, a live terminal, the
 * recording it leaves): each step names the steps it needs, and when one of them did not
 * pass it is reported as skipped with that reason, not as a second, confusing failure.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';

/** Declares one step: `id` for later steps' `needs`, `name` as the test's name. */
export type Step = (id: string, name: string, needs: string[], body: (t: TestContext) => Promise<void>) => void;

/** A new scenario's step declarer; steps run in the order declared (node:test runs a file's tests in order). */
export function scenario(): Step {
  const passed = new Set<string>();
  return (id, name, needs, body) => {
    test(name, async (t) => {
      const missing = needs.filter((n) => !passed.has(n));
      if (missing.length > 0) {
        t.skip(`needs step ${missing.join(', ')}, which did not pass`);
        return;
      }
      await body(t);
      passed.add(id);
    });
  };
}
