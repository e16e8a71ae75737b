/**
 * Headless Chromium for the web UI's end-to-end tests: Debian's /usr/bin/chromium driven by
 * playwright-core (no browser download), with the flags a closed network and a root
 * sandbox-less run need, and screenshots written under test-output/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

/** Chromium as Debian installs it (scripts/ensure-system-deps.ts). */
export const CHROMIUM = process.env.POSTERN_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go, for a person to look at. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url));

/** Starts headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Saves a full-page screenshot as test-output/screenshots/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** One rule axe-core found broken on a page, with where. */
export interface AxeViolation { id: string; impact?: string | null; help: string; nodes: Array<{ target: unknown[]; failureSummary?: string }> }

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** Runs axe-core on the page (injected once) and returns every violation; fails when axe checked nothing. */
export async function axeViolations(p: Page): Promise<AxeViolation[]> {
  if (!(await p.evaluate(() => 'axe' in window))) await p.addScriptTag({ path: AXE });
  return p.evaluate(async () => {
    const r = await (window as unknown as { axe: { run: (d: Document) => Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }).axe.run(document);
    if (r.passes.length === 0) throw new Error('axe checked nothing');
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
}

/** Waits for layout after a viewport change (two animation frames, then the fonts). */
export async function settle(p: Page): Promise<void> {
  await p.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))));
  await p.evaluate(() => document.fonts.ready.then(() => undefined));
}

/** Polls `check` until it returns '' (ok) or the deadline passes; returns the last complaint. */
export async function poll(check: () => Promise<string>, ms = 5000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const problem = await check();
    if (!problem || Date.now() - t0 > ms) return problem;
    await new Promise((r) => setTimeout(r, 100));
  }
}
