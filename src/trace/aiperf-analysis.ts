import type { TraceRow } from "./types.ts";

/** AIPerf's `MetricStats`: mean, population standard deviation, min, quartiles and max. */
export interface AiperfMetricStats {
  mean: number;
  std_dev: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  max: number;
}

/** AIPerf's `AnalysisStats`, what `aiperf analyze-trace --output-file` writes. */
export interface AiperfAnalysisStats {
  total_requests: number;
  unique_prefixes: number;
  cache_hit_rate: number;
  min_isl: number;
  max_isl: number;
  avg_isl: number;
  min_osl: number;
  max_osl: number;
  avg_osl: number;
  prefix_reuse_ratio: number;
  isl_stats: AiperfMetricStats | null;
  osl_stats: AiperfMetricStats | null;
  context_length_stats: AiperfMetricStats | null;
  unique_prompt_length_stats: AiperfMetricStats | null;
  hit_rate_stats: AiperfMetricStats | null;
}

/** Linear interpolation between order statistics (numpy's default percentile). */
function quantile(sorted: Float64Array, q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function metricStats(values: readonly number[]): AiperfMetricStats | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return {
    mean,
    std_dev: Math.sqrt(variance),
    min: sorted[0]!,
    p25: quantile(sorted, 0.25),
    median: quantile(sorted, 0.5),
    p75: quantile(sorted, 0.75),
    max: sorted[sorted.length - 1]!,
  };
}

/**
 * A trace analysed as AIPerf's `PrefixAnalyzer` does it: `unique_prefixes` counts distinct hash-id prefixes
 * (`hash_ids[:i]` for every request and i), `prefix_reuse_ratio` is the share of those prefix occurrences whose
 * prefix occurs more than once, `cache_hit_rate` the share of blocks whose id was seen before (an infinite cache),
 * and `hit_rate_stats` that share per request. Context and unique-prompt lengths come from the rows' `context_len`
 * and `unique_user_prompt_len` (written by the synthesizer), null when the trace has none.
 */
export function aiperfAnalysis(rows: readonly TraceRow[]): AiperfAnalysisStats {
  // Prefix trie: a node per distinct prefix, keyed by (parent node, hash id), with its occurrence count.
  const child = new Map<string, number>();
  const counts: number[] = [];
  const seen = new Set<number>();
  let blocks = 0;
  let reused = 0;
  const hitRates: number[] = [];
  for (const row of rows) {
    let node = -1;
    let hits = 0;
    for (const id of row.hash_ids) {
      const key = `${node}:${id}`;
      let next = child.get(key);
      if (next === undefined) {
        next = counts.length;
        child.set(key, next);
        counts.push(0);
      }
      counts[next]!++;
      node = next;
      blocks++;
      if (seen.has(id)) {
        reused++;
        hits++;
      } else seen.add(id);
    }
    if (row.hash_ids.length > 0) hitRates.push(hits / row.hash_ids.length);
  }
  const occurrences = counts.reduce((a, c) => a + c, 0);
  const repeated = counts.reduce((a, c) => a + (c > 1 ? c : 0), 0);
  const isl = rows.map((r) => r.input_length);
  const osl = rows.map((r) => r.output_length);
  const avg = (v: number[]) => (v.length === 0 ? 0 : v.reduce((a, x) => a + x, 0) / v.length);
  const context = rows.flatMap((r) => (r.context_len === undefined ? [] : [r.context_len]));
  const unique = rows.flatMap((r) =>
    r.unique_user_prompt_len === undefined ? [] : [r.unique_user_prompt_len],
  );
  return {
    total_requests: rows.length,
    unique_prefixes: counts.length,
    cache_hit_rate: blocks === 0 ? 0 : reused / blocks,
    min_isl: isl.length ? Math.min(...isl) : 0,
    max_isl: isl.length ? Math.max(...isl) : 0,
    avg_isl: avg(isl),
    min_osl: osl.length ? Math.min(...osl) : 0,
    max_osl: osl.length ? Math.max(...osl) : 0,
    avg_osl: avg(osl),
    prefix_reuse_ratio: occurrences === 0 ? 0 : repeated / occurrences,
    isl_stats: metricStats(isl),
    osl_stats: metricStats(osl),
    context_length_stats: metricStats(context),
    unique_prompt_length_stats: metricStats(unique),
    hit_rate_stats: metricStats(hitRates),
  };
}
