// Tries to get a WebAssembly memory of the size asked for and says whether the browser gave it.
// It runs in a worker of its own, terminated right after: the memory goes with it, so the probe
// holds nothing the engine's own allocation will need.
self.onmessage = (e: MessageEvent<number>) => {
  const pages = e.data;
  try {
    new WebAssembly.Memory({ initial: pages, maximum: pages });
    self.postMessage(true);
  } catch {
    self.postMessage(false);
  }
};
