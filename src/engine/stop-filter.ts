// Cuts generated text at the first stop string. Text that could still become the start of a stop
// string is held back until the next piece decides, so no part of a stop string is ever emitted.

export class StopFilter {
  private held = '';
  private readonly stops: readonly string[];
  /** True once a stop string was found: everything after it is dropped. */
  stopped = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds generated text; returns the part that is safe to show now. */
  push(text: string): string {
    if (this.stopped) return '';
    const buffer = this.held + text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.held = '';
      return buffer.slice(0, cut);
    }
    const keep = this.partialStopLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return buffer.slice(0, buffer.length - keep);
  }

  /** Generation ended without a stop string: the held-back text is plain text after all. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest end of `buffer` that is a proper beginning of some stop string. */
  private partialStopLength(buffer: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, buffer.length); k > longest; k--) {
        if (buffer.endsWith(stop.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    return longest;
  }
}
