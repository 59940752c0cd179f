/** Figures and tables shared by the benchmark scripts. @module */

/** A megabyte as the benchmarks count throughput: 10^6 bytes. */
export const MB = 1e6;

/** The middle value (the mean of the two middles for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** "ok" or "MISS" for a target met or missed, "-" when there is nothing to judge. */
export const verdict = (ok: boolean | null): string => ok === null ? "-" : ok ? "ok" : "MISS";

/** Formats rows as a plain-text table; columns whose header starts with ">" align right. */
export function formatTable(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.startsWith(">"));
  const titles = headers.map((h) => h.replace(/^>/, ""));
  const widths = titles.map((t, i) => Math.max(t.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(titles), rule, ...rows.map(line)].join("\n");
}
