// Layer: demo (service worker). Makes the demo open offline:
// - precaches the app shell, every built asset (JS, CSS, the syncline .wasm) and the icons at
//   install time; the build replaces __PRECACHE__ and __VERSION__ (see vite.config.mjs), so each
//   deployment is a new worker and the page can offer "reload to update";
// - HTML navigations: network first, falling back to the cached shell (any app route);
// - hashed assets: cache first; other same-origin files: network first with cache fallback;
// - never touches the API (/v1/...) or /metrics: data comes from the syncline replica in
//   IndexedDB, and writes wait in its outbox, not in this cache.
const VERSION = '__VERSION__';
const PRECACHE = __PRECACHE__;
const CACHE = `syncline-demo-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(PRECACHE.map((u) => new Request(u, { cache: 'reload' })))),
  );
  // A first install activates at once; an update waits until the page says SKIP_WAITING.
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith('syncline-demo-') && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

function isApi(url) {
  return url.pathname.startsWith('/v1/') || url.pathname === '/metrics';
}

async function networkFirst(request, fallbackUrl) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(request);
    if (res.ok) cache.put(fallbackUrl ?? request, res.clone());
    return res;
  } catch (e) {
    const hit = (await cache.match(fallbackUrl ?? request)) ?? (fallbackUrl ? await cache.match('/') : undefined);
    if (hit) return hit;
    throw e;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const res = await fetch(request);
  if (res.ok) cache.put(request, res.clone());
  return res;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || isApi(url)) return;
  if (req.mode === 'navigate') {
    event.respondWith(networkFirst(req, '/index.html'));
  } else if (url.pathname.startsWith('/assets/')) {
    event.respondWith(cacheFirst(req));
  } else {
    event.respondWith(networkFirst(req));
  }
});
