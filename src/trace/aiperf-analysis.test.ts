import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aiperfAnalysis, metricStats } from "./aiperf-analysis.ts";

describe("a trace analysed as AIPerf's analyze-trace does", () => {
  it("counts prefixes, their reuse and the infinite-cache hit rate by hand", () => {
    const s = aiperfAnalysis([
      { input_length: 1000, output_length: 10, hash_ids: [1, 2] },
      { input_length: 1500, output_length: 30, hash_ids: [1, 2, 3] },
      { input_length: 500, output_length: 20, hash_ids: [4] },
    ]);
    // Prefixes (1), (1,2), (1,2,3), (4): four distinct; (1) and (1,2) occur twice: 4 of 6 occurrences repeat.
    assert.equal(s.unique_prefixes, 4);
    assert.equal(s.prefix_reuse_ratio, 4 / 6);
    // Blocks 1, 2 are seen again in the second request: 2 hits of 6 blocks.
    assert.equal(s.cache_hit_rate, 2 / 6);
    assert.deepEqual(
      [s.min_isl, s.max_isl, s.avg_isl, s.min_osl, s.max_osl, s.avg_osl],
      [500, 1500, 1000, 10, 30, 20],
    );
    assert.deepEqual(s.hit_rate_stats, metricStats([0, 2 / 3, 0]));
    assert.equal(s.context_length_stats, null);
  });

  it("gives numpy's statistics: population standard deviation, linear quartiles", () => {
    assert.deepEqual(metricStats([1, 2, 3, 4]), {
      mean: 2.5,
      std_dev: Math.sqrt(1.25),
      min: 1,
      p25: 1.75,
      median: 2.5,
      p75: 3.25,
      max: 4,
    });
    assert.equal(metricStats([]), null);
  });
});
