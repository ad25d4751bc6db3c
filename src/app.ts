// The app page's bootstrap: in a production build, register the service worker (offline app
// shell + cross-origin isolation on hosts that send no headers), reload once when it first takes
// control so that the page becomes cross-origin isolated, then define <qwen-chat>.
import { importCode } from './lazy-code.ts';

const RELOAD_FLAG = 'qwen-web:isolation-reload';

/** Defined by vite.config.ts: true in a built site. */
declare const __QWEN_WEB_SERVICE_WORKER__: boolean;

type Isolation = 'ready' | 'reloading';

async function ensureIsolation(): Promise<Isolation> {
  if (!__QWEN_WEB_SERVICE_WORKER__ || !('serviceWorker' in navigator)) return 'ready';
  let registration: ServiceWorkerRegistration;
  try {
    // Resolved against the page: the worker sits beside index.html and controls its directory.
    registration = await navigator.serviceWorker.register('./sw.js');
  } catch (error) {
    console.warn('qwen-web: service worker not registered; no offline use', error);
    return 'ready';
  }
  if (globalThis.crossOriginIsolated) {
    sessionStorage.removeItem(RELOAD_FLAG);
    return 'ready';
  }
  // One reload per tab session at most: a browser that ignores the worker's headers must not loop.
  if (sessionStorage.getItem(RELOAD_FLAG) !== null) {
    console.warn('qwen-web: not cross-origin isolated after reload; the model runs on one thread');
    return 'ready';
  }
  if (!navigator.serviceWorker.controller && !(await waitForControl(registration))) return 'ready';
  sessionStorage.setItem(RELOAD_FLAG, String(Date.now()));
  location.reload();
  return 'reloading';
}

/** Resolves true once the worker controls this page, false when it failed to install. */
function waitForControl(registration: ServiceWorkerRegistration): Promise<boolean> {
  return new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', () => resolve(true), { once: true });
    // Already active (the page was loaded bypassing it, e.g. a hard reload): ask it to claim us.
    registration.active?.postMessage('claim');
    const pending = registration.installing ?? registration.waiting;
    pending?.addEventListener('statechange', () => {
      if (pending.state === 'redundant') resolve(false);
    });
    if (!registration.active && !pending) resolve(false);
  });
}

async function main(): Promise<void> {
  if ((await ensureIsolation()) === 'reloading') return;
  try {
    await importCode('qwen-web', () => import('./lib.ts'));
  } catch (error) {
    // The page's only content is the loading line: it says what happened instead.
    const line = document.querySelector('.app-loading');
    if (line) line.textContent = error instanceof Error ? error.message : String(error);
    document.documentElement.dataset.ready = 'failed';
    console.error(error);
    return;
  }
  document.documentElement.dataset.ready = 'true';
}

void main();
