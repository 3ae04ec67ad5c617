// The demo's layout on a phone, a small laptop and a desktop: every page of both panels (the list
// is read from the app's own navigation, so a new page is checked without editing this file)
// must fit the viewport's width, and nothing a user reads or presses may be cut off.
//
// With SYNCLINE_SHOTS=1 (`npm run screenshots`) it also writes docs/screenshots/<panel>-<page>
// [-phone].png for every page, so the screenshots in the docs show the current app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openAs, shot, openDemo, closeDemo } from './demo-helpers.mjs';

const WIDTHS = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'laptop', width: 1024, height: 768 },
  { name: 'desktop', width: 1440, height: 900 },
];
let server;
let chrome;

before(async () => ({ server, chrome } = await openDemo()));
after(() => closeDemo({ server, chrome }));

/** What does not fit on the page as shown, described for the assertion message. Runs in the page. */
function layoutProblems() {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const where = (el) => {
    const id = el.getAttribute('data-testid') || el.id;
    const cls = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
    return `${el.tagName.toLowerCase()}${id ? `[${id}]` : ''}${cls}`;
  };
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || s.display === 'none') return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1; // a 1px box is text for screen readers only
  };
  const lines = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    // Text fragments on one line share it even when their boxes differ by a pixel or two.
    const rects = [...range.getClientRects()].filter((q) => q.width > 0 && q.height > 0).sort((a, b) => a.top - b.top);
    let count = 0;
    let lineBottom = -Infinity;
    for (const q of rects) {
      if (q.top >= lineBottom - q.height / 2) count++;
      lineBottom = Math.max(lineBottom, q.bottom);
    }
    return count;
  };
  // An element that scrolls sideways on purpose (a calendar, a board, a tab strip) says so.
  const intendedScroller = (el) => el.closest('[data-scroll-x]') !== null;

  if (document.documentElement.scrollWidth > vw + 1) problems.push(`page is ${document.documentElement.scrollWidth}px wide in a ${vw}px viewport`);
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el) || el.closest('.toasts')) continue;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    // Wider than its box and cut off or scrolled: a table that needs sideways scrolling to reach
    // its last column, a button whose label is clipped.
    if (el.scrollWidth > el.clientWidth + 1 && ['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX) && !intendedScroller(el)) {
      if (s.textOverflow === 'ellipsis' && el.title) continue; // truncated on purpose, full text in the title
      problems.push(`${where(el)} clips or scrolls its content (${el.scrollWidth}px in ${el.clientWidth}px)`);
    }
    // Past the right edge: reported once, at the box that lets it out (not for each element
    // inside a box that already clips or scrolls it).
    const clippedInside = (() => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) return true;
      }
      return false;
    })();
    if (r.right > vw + 1 && !clippedInside && !intendedScroller(el) && s.position !== 'fixed') problems.push(`${where(el)} ends at ${Math.round(r.right)}px, past the ${vw}px viewport`);
    if (el.matches('button, a.btn, .pill, .act-badge, .mono') && el.scrollWidth > el.clientWidth + 1 && !intendedScroller(el)) {
      problems.push(`${where(el)} "${el.textContent.trim().slice(0, 30)}" is cut off`);
    }
    // A label that wraps inside a one-line control (a bill number over two lines).
    if (el.matches('td.mono, .num-col, button, .pill, .act-badge') && el.textContent.trim().length <= 24 && lines(el) > 1) {
      problems.push(`${where(el)} "${el.textContent.trim().slice(0, 30)}" wraps`);
    }
  }
  for (const input of document.querySelectorAll('input[type="search"], input[type="text"], select')) {
    if (visible(input) && input.getBoundingClientRect().width < 120) problems.push(`${where(input)} is only ${Math.round(input.getBoundingClientRect().width)}px wide`);
  }
  return [...new Set(problems)].slice(0, 12);
}

async function checkPanel(user, panel) {
  const found = {};
  for (const size of WIDTHS) {
    const context = await chrome.browser.newContext({ viewport: { width: size.width, height: size.height } });
    try {
      const page = await openAs(context, server, user);
      const paths = await page.$$eval('nav[aria-label="Main"] a', (as) => as.map((a) => a.getAttribute('href')));
      assert.ok(paths.length >= 3, `${panel} navigation lists its pages: ${paths}`);
      for (const path of paths) {
        await page.click(`nav[aria-label="Main"] a[href="${path}"]`);
        await page.waitForFunction((p) => location.pathname === p, path);
        // Let lists render and entrance animations settle before measuring.
        await page.waitForTimeout(500);
        const problems = await page.evaluate(layoutProblems);
        if (problems.length) found[`${path} at ${size.width}px`] = problems;
        if (size.name !== 'laptop') {
          const slug = path === '/' ? (panel === 'admin' ? 'dashboard' : 'account') : path.slice(1);
          await shot(page, `${panel}-${slug}${size.name === 'phone' ? '-phone' : ''}`);
        }
      }
      assert.deepEqual(page.errors, [], 'no page errors');
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(found, {}, `${panel} panel layout`);
}

test('admin panel: every page fits 390, 1024 and 1440 px with nothing cut off', async () => {
  await checkPanel('admin-maya', 'admin');
});

test('customer panel: every page fits 390, 1024 and 1440 px with nothing cut off', async () => {
  await checkPanel('cust-ana', 'customer');
});
