// Small statistics the benchmarks share.

/** The median (the mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rounded to 3 decimals, as the benchmarks' JSON reports figures. */
export const r3 = (x: number) => Math.round(x * 1000) / 1000;
