#!/usr/bin/env node
// Layer: demo tooling. Renders the SVG icons to the PNG sizes the web app manifest lists, with
// the machine's chromium (playwright-core). Run after editing public/icons/*.svg:
//   npm run icons -w demo
import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const dir = new URL('../public/icons/', import.meta.url);
const browser = await chromium.launch({ executablePath: process.env.SYNCLINE_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  for (const [svg, size, out] of [
    ['icon.svg', 192, 'icon-192.png'],
    ['icon.svg', 512, 'icon-512.png'],
    ['icon-maskable.svg', 512, 'icon-maskable-512.png'],
  ]) {
    await page.setViewportSize({ width: size, height: size });
    const markup = readFileSync(new URL(svg, dir), 'utf8');
    await page.setContent(`<style>html,body{margin:0;background:transparent}svg{width:${size}px;height:${size}px;display:block}</style>${markup}`);
    writeFileSync(new URL(out, dir), await page.screenshot({ omitBackground: true }));
    console.log(`wrote ${out}`);
  }
} finally {
  await browser.close();
}
