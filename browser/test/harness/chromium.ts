// Debian's Chromium driven by playwright-core: no browser download, headless, no
// background traffic, a fresh empty profile for every launch.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where Chromium is looked for: `CHROMIUM_PATH`, else Debian's package. */
export const CHROMIUM_PATH: string = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_INSTALL_HINT =
  'install it with `apt-get update && apt-get install -y chromium` (or set CHROMIUM_PATH)';

/**
 * Why the browser tests cannot run here, or undefined when they can. In CI (`CI`
 * set) a missing Chromium is an error, never a skip.
 */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `Chromium not found at ${CHROMIUM_PATH}: ${CHROMIUM_INSTALL_HINT}`;
  if (process.env.CI) throw new Error(`[browser] ${reason} (not allowed in CI)`);
  console.warn(`[browser] ${reason}; the browser tests are skipped`);
  return reason;
}

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Chromium headless. playwright-core gives every launch a new empty
 * user-data-dir (a fresh temporary profile, removed at close); each test then
 * opens its own context, so cookies and storage never leak between tests.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    timeout: 30_000,
  });
}
