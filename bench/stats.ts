// Small helpers for the benchmarks: latency summaries (quantiles from simple-statistics) and
// table printing.
import { mean, quantileSorted } from 'simple-statistics';

export function summarize(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  return { p50: quantileSorted(s, 0.5), p95: quantileSorted(s, 0.95), p99: quantileSorted(s, 0.99), mean: mean(s) };
}

export function table(title: string, header: string[], rows: (string | number)[][]): void {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 1 ? 2 : 3)) : v);
  const cells = [header, ...rows.map((r) => r.map(fmt))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  console.log(`\n## ${title}\n`);
  cells.forEach((r, k) => {
    console.log(`| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`);
    if (k === 0) console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  });
}
