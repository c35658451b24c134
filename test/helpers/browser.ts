// Debian's Chromium driven by playwright-core (DESIGN.md §6). Every page records console errors
// and uncaught exceptions so tests can assert the console stays clean; screenshots go to
// test-output/ (git-ignored) for a person to look at.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO } from './appliance.ts';

export const SHOTS = join(REPO, 'test-output', 'screenshots');

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
}

export interface WatchedPage {
  page: Page;
  /** Console errors and page errors seen so far. */
  problems: string[];
  shot(name: string): Promise<void>;
}

export async function openPage(context: BrowserContext, opts: { ignore?: RegExp[] } = {}): Promise<WatchedPage> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  const ignored = (text: string) => (opts.ignore ?? []).some((r) => r.test(text));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !ignored(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  mkdirSync(SHOTS, { recursive: true });
  return {
    page,
    problems,
    shot: async (name) => {
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    },
  };
}
