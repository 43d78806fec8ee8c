// The radix sort against the built-in comparison sort, on the values a KS test can meet.
import { describe, expect, it } from 'vitest';
import { sortedFloat64 } from '../../drift/radix-sort.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';

describe('sortedFloat64', () => {
  it('sorts as Float64Array.prototype.sort does: signs, zeros, infinities, subnormals, ties', () => {
    const g = gaussian(mulberry32(7));
    const special = [0, -0, Infinity, -Infinity, 5e-324, -5e-324, 1e-310, -1e-310, 1e308, -1e308, 3, 3, -3];
    const cases = [
      Float64Array.from({ length: 50_000 }, g),
      Float64Array.from({ length: 9_000 }, (_, i) => special[i % special.length] * (i % 2 ? 1 : g())),
      Float64Array.from({ length: 6_000 }, (_, i) => (i * 7919) % 101), // few distinct values: passes skipped
      Float64Array.from({ length: 100 }, g), // short: the built-in sort
    ];
    for (const values of cases) {
      const got = sortedFloat64(values);
      const want = Float64Array.from(values).sort();
      expect(got).toHaveLength(values.length);
      for (let i = 0; i < values.length; i++) expect(got[i] === want[i]).toBe(true);
    }
  });

  it('leaves its input as it was', () => {
    const values = Float64Array.from({ length: 5_000 }, (_, i) => 5_000 - i);
    sortedFloat64(values);
    expect(values[0]).toBe(5_000);
  });
});
