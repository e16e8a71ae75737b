/**
 * `--test-global-setup` of `npm run test:e2e`: builds dist/web once, before the e2e files
 * start side by side. Each file still calls ensureWebBuilt(), which then finds the build
 * fresh; two files building at the same moment would write dist/web over each other while
 * the other's server reads it.
 */
import { ensureWebBuilt } from '../../scripts/build-web.ts';

/** Runs once in the test runner before any e2e file. */
export async function globalSetup(): Promise<void> {
  await ensureWebBuilt();
}
