// Renders public/icons/icon.svg to the PNG sizes the web app manifest lists (192 and 512 px),
// with the machine's Chromium. Run after changing the SVG: `npx tsx scripts/make-icons.ts`.
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const SVG_PATH = 'public/icons/icon.svg';
const SIZES = [192, 512];

const svg = await readFile(SVG_PATH, 'utf8');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  for (const size of SIZES) {
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(`<!doctype html><style>html,body{margin:0}svg{display:block;width:${size}px;height:${size}px}</style>${svg}`);
    await page.locator('svg').screenshot({ path: `public/icons/icon-${size}.png`, omitBackground: true });
    console.log(`public/icons/icon-${size}.png`);
  }
} finally {
  await browser.close();
}
