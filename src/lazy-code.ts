// Parts of our own code loaded when first needed (import() of a chunk of the build: the engine,
// the kernels' host, the grammar engine). Such a fetch can fail: a connection dropped on a first
// visit, a server under load, a deployment that removed the file. Chromium and WebKit fetch a
// failed module again on the next import(), so one more try after a pause gets past a hiccup.
// Firefox keeps the failure for the life of the page (or worker): there only a reload or a fresh
// worker helps, which is what the error tells callers and people.

/** A lazily loaded part of the app could not be fetched or run. `code` is 'code-unavailable'. */
export class CodeUnavailableError extends Error {
  override readonly name = 'CodeUnavailableError';
  readonly code = 'code-unavailable';
}

export function isCodeUnavailable(error: unknown): boolean {
  const { code, detail } = (error ?? {}) as { code?: unknown; detail?: unknown };
  return code === 'code-unavailable' || detail === 'code-unavailable';
}

/** `load()` (an import() of our code), tried once more after `retryAfterMs` when it fails. */
export async function importCode<T>(what: string, load: () => Promise<T>, retryAfterMs = 1000): Promise<T> {
  try {
    return await load();
  } catch {
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
    try {
      return await load();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new CodeUnavailableError(`${what} could not be loaded (${reason}); check the connection and reload the page`, { cause: error });
    }
  }
}
