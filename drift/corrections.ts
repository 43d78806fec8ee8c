// Multiple-testing corrections for the per-component KS tests.

/** Bonferroni: controls the family-wise error rate; p * m, capped at 1. */
export function bonferroni(pvalues: number[]): number[] {
  return pvalues.map((p) => Math.min(1, p * pvalues.length));
}

/** Benjamini-Hochberg adjusted p-values (controls the false discovery rate), as statsmodels'
 * multipletests(method='fdr_bh') returns them. */
export function benjaminiHochberg(pvalues: number[]): number[] {
  const m = pvalues.length;
  const order = pvalues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = 1;
  for (let r = m - 1; r >= 0; r--) {
    const [p, i] = order[r];
    running = Math.min(running, (p * m) / (r + 1));
    adjusted[i] = Math.min(1, running);
  }
  return adjusted;
}

export type Correction = 'bonferroni' | 'bh';
export const correct = (pvalues: number[], how: Correction) => (how === 'bh' ? benjaminiHochberg(pvalues) : bonferroni(pvalues));
