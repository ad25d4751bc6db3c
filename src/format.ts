// Numbers as people read them: sizes, rates, durations (the UI, and the storage layer's messages).

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** 1500 → "1.5 kB" (decimal units, as browsers and Hugging Face show sizes; one decimal under 10). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** 95 → "1:35", 3700 → "1:01:40"; unknown → "?". */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '?';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** A rate or time with sensible digits: 12.34 → "12.3", 0.0123 → "0.012". */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '?';
  if (value >= 100) return value.toFixed(0);
  if (value >= 1) return value.toFixed(1);
  return value.toPrecision(2);
}
