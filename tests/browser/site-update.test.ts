// A new deployment of the built site, as a static host would swap it: version 1 is visited and
// cached, then the host's files are replaced by version 2's. Checked in headless Chromium:
//  - version 2's service worker installs and takes over the open tab at once;
//  - that tab, still running version 1, keeps getting version 1's hashed files (from version 1's
//    cache, kept for it) although the host no longer has them;
//  - a reload runs version 2, cross-origin isolated.
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type LaunchedChromium } from '../support/chromium.ts';
import { buildSite, type SiteBuild } from '../support/site-build.ts';
import { startStaticServer, type StaticServer } from '../support/static-server.ts';

let v1: SiteBuild;
let v2: SiteBuild;
let live: string;
let server: StaticServer;
let chromium: LaunchedChromium;

/** Replaces what the host serves with `build`'s files. */
async function deploy(build: SiteBuild): Promise<void> {
  for (const entry of await readdir(live)) await rm(join(live, entry), { recursive: true, force: true });
  await cp(build.dir, live, { recursive: true });
}

async function appReady(page: Page): Promise<void> {
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: 60_000 });
}

/** What the page gets for build-marker.txt (through its service worker) and the caches it has. */
function pageState(page: Page): Promise<{ marker: string; caches: string[]; isolated: boolean }> {
  return page.evaluate(async () => ({
    marker: await (await fetch('build-marker.txt')).text(),
    caches: (await caches.keys()).sort(),
    isolated: globalThis.crossOriginIsolated,
  }));
}

beforeAll(async () => {
  v1 = await buildSite({ marker: 'v1' });
  v2 = await buildSite({ marker: 'v2' });
  live = await mkdtemp(join(tmpdir(), 'qwen-web-live-'));
  await deploy(v1);
  server = await startStaticServer({ root: live, isolation: false });
  chromium = await launchChromium();
}, 300_000);

afterAll(async () => {
  await chromium?.close();
  await server?.close();
  await v1?.remove();
  await v2?.remove();
  if (live) await rm(live, { recursive: true, force: true });
});

describe('a new deployment of the built site', () => {
  it('takes over at once while an open tab of the old version keeps its files', async () => {
    const manifest1 = await v1.precache();
    const manifest2 = await v2.precache();
    expect(manifest2.version).not.toBe(manifest1.version);
    // The app's chunk differs between the two builds: version 1's is gone from the host after the swap.
    const appChunk1 = manifest1.files.find((f) => /^assets\/index-.*\.js$/.test(f))!;
    expect(manifest2.files).not.toContain(appChunk1);

    const page = await chromium.newPage();
    await page.goto(`${server.url}/`);
    await appReady(page);
    expect(await page.evaluate(() => document.documentElement.dataset.build)).toBe('v1');
    expect(await pageState(page)).toEqual({ marker: 'v1', caches: [`qwen-web-shell-${manifest1.version}`], isolated: true });

    await deploy(v2);
    expect((await fetch(`${server.url}/${appChunk1}`)).status).toBe(404);
    await page.evaluate(async () => {
      const takenOver = new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      await (await navigator.serviceWorker.getRegistration())!.update();
      await takenOver;
    });
    expect(await pageState(page)).toEqual({
      marker: 'v2',
      caches: [`qwen-web-shell-${manifest1.version}`, `qwen-web-shell-${manifest2.version}`].sort(),
      isolated: true,
    });
    // The old tab's own files still load, from version 1's cache.
    const oldChunk = await page.evaluate(async (path) => {
      const response = await fetch(path);
      return { status: response.status, bytes: (await response.text()).length };
    }, appChunk1);
    expect(oldChunk.status).toBe(200);
    expect(oldChunk.bytes).toBeGreaterThan(0);

    await page.reload();
    await appReady(page);
    expect(await page.evaluate(() => document.documentElement.dataset.build)).toBe('v2');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(chromium.consoleErrors, chromium.consoleErrors.join('\n')).toEqual([]);
  }, 300_000);
});
