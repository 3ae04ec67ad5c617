// Shared by the runtime/ part tests: waiting on the event loop, deferred promises. Not a test file.
export const dist = (p) => new URL(`../../../js-wrapper/dist/${p}`, import.meta.url).href;

/** Lets queued microtasks run (promise chains a few links long). */
export const flush = async (n = 20) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

/** Real time passes (the parts use real timers). */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Polls `cond` until true (or fails after `ms`). */
export async function until(cond, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
