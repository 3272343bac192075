import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseGoodput } from "../metrics/goodput.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { makeRecord } from "../metrics/record-fixtures.ts";
import { createRng, type Rng } from "../random.ts";
import {
  COMPARE_METRIC_TAGS,
  COMPARE_STATISTICS,
  compareArms,
  compareMetric,
  detectOverload,
  formatNumber,
  formatP,
  type MetricComparison,
  type QueueSample,
  type RequestTiming,
  summarizeArm,
  verdict,
} from "./compare.ts";
import { type Estimate, moverDifference, wilsonInterval } from "./stats.ts";

function normal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/** Heavy-tailed like real latencies: median `median`, log-sd `sigma`. */
function lognormal(rng: Rng, median: number, sigma: number): number {
  return median * Math.exp(sigma * normal(rng));
}

function covers(e: Estimate, v: number): boolean {
  return e.lo <= v && v <= e.hi;
}

/** A streamed request: first token after `ttftMs`, then `tokens − 1` more every `itlMs`. */
function streamed(
  session: number,
  startMs: number,
  ttftMs: number,
  itlMs: number,
  tokens: number,
  input = 100,
): RequestRecord {
  const chunks = Array.from({ length: tokens }, (_, i) => startMs + ttftMs + i * itlMs);
  return makeRecord({ session, startMs, chunksMs: chunks, input, output: tokens });
}

const NAMES = { baseline: "agg-round-robin", candidate: "disagg-kv" };

describe("compareMetric", () => {
  it("bootstrap intervals cover a known shift and have the width sampling theory predicts", () => {
    // Baseline median 100 ms, log-sd 0.5: variance 100²·(e^0.25 − 1)·e^0.25. The additive arm is shifted by
    // +40 ms (every statistic's true difference is 40), the multiplicative one scaled by 0.7 (true ratio 0.7).
    const reps = 60;
    const n = 300;
    const variance = 100 ** 2 * (Math.exp(0.25) - 1) * Math.exp(0.25);
    const coveredDiff = Object.fromEntries(COMPARE_STATISTICS.map((s) => [s, 0]));
    const coveredRatio = Object.fromEntries(COMPARE_STATISTICS.map((s) => [s, 0]));
    let meanWidth = 0;
    for (let rep = 0; rep < reps; rep++) {
      const rng = createRng(rep, "coverage");
      const a = Array.from({ length: n }, () => lognormal(rng, 100, 0.5));
      const shifted = Array.from({ length: n }, () => lognormal(rng, 100, 0.5) + 40);
      const scaled = Array.from({ length: n }, () => 0.7 * lognormal(rng, 100, 0.5));
      const d = compareMetric("time_to_first_token", a, shifted, { seed: rep, resamples: 500 });
      const r = compareMetric("time_to_first_token", a, scaled, { seed: rep, resamples: 500 });
      for (const s of COMPARE_STATISTICS) {
        if (covers(d.statistics[s].difference, 40)) coveredDiff[s]!++;
        if (covers(r.statistics[s].ratio!, 0.7)) coveredRatio[s]!++;
      }
      meanWidth += (d.statistics.avg.difference.hi - d.statistics.avg.difference.lo) / reps;
    }
    // 95 % intervals cover 57 of 60 on average; 50 leaves room for chance but not for intervals that are too
    // narrow (a 68 % interval would cover about 41).
    for (const s of COMPARE_STATISTICS) {
      assert.ok(coveredDiff[s]! >= 50, `difference of ${s} covered ${coveredDiff[s]} of ${reps}`);
      assert.ok(coveredRatio[s]! >= 50, `ratio of ${s} covered ${coveredRatio[s]} of ${reps}`);
    }
    // …and an interval covering by being needlessly wide would fail here: 2·1.96·√(2σ²/n).
    const expected = 2 * 1.96 * Math.sqrt((2 * variance) / n);
    assert.ok(Math.abs(meanWidth / expected - 1) < 0.15, `mean width ${meanWidth} vs ${expected}`);
  });

  it("finds a clear improvement in a large sample, with the true ratio inside every interval", () => {
    const rng = createRng(11, "large");
    const a = Array.from({ length: 5000 }, () => lognormal(rng, 200, 0.6));
    const b = Array.from({ length: 5000 }, () => 0.6 * lognormal(rng, 200, 0.6));
    const c = compareMetric("time_to_first_token", a, b, { seed: 1 });
    assert.equal(c.resamples, 2000);
    assert.equal(c.confidence, 0.95);
    assert.equal(c.unit, "ms");
    assert.equal(c.largerIsBetter, false);
    for (const s of COMPARE_STATISTICS) {
      const ratio = c.statistics[s].ratio!;
      assert.ok(covers(ratio, 0.6), `${s}: ${JSON.stringify(ratio)}`);
      assert.ok(ratio.hi < 1);
      assert.ok(c.statistics[s].difference.hi < 0);
      assert.equal(verdict(c, s, NAMES).direction, "improvement");
    }
    assert.ok(c.shift.p < 1e-100);
    assert.ok(c.shift.probabilityCandidateLower > 0.7);
  });

  it("a zero shift gives intervals around 0 and 1 and no verdict of change", () => {
    const rng = createRng(12, "null");
    const a = Array.from({ length: 2000 }, () => lognormal(rng, 150, 0.8));
    const b = Array.from({ length: 2000 }, () => lognormal(rng, 150, 0.8));
    const c = compareMetric("request_latency", a, b, { seed: 3 });
    for (const s of COMPARE_STATISTICS) {
      assert.ok(covers(c.statistics[s].difference, 0), `${s} difference`);
      assert.ok(covers(c.statistics[s].ratio!, 1), `${s} ratio`);
      const v = verdict(c, s, NAMES);
      assert.equal(v.direction, "no-difference");
      assert.match(v.text, /^no significant difference in request latency/);
    }
    assert.ok(c.shift.p > 0.05);
  });

  it("point estimates are AIPerf's statistics, and the same seed gives the same intervals", () => {
    const values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    const c = compareMetric("inter_token_latency", values, values, { seed: 5, resamples: 300 });
    assert.equal(c.statistics.avg.baseline, 55);
    assert.equal(c.statistics.p50.baseline, 55);
    assert.equal(c.statistics.p90.baseline, 91);
    assert.equal(c.statistics.p99.candidate, 99.1);
    assert.equal(c.statistics.p50.difference.estimate, 0);
    assert.equal(c.statistics.p50.ratio!.estimate, 1);
    assert.deepEqual(c, compareMetric("inter_token_latency", values, values, { seed: 5, resamples: 300 }));
    const other = compareMetric("inter_token_latency", values, values, { seed: 6, resamples: 300 });
    assert.notDeepEqual(c.statistics, other.statistics);
  });

  it("has no ratio when the baseline statistic is 0", () => {
    const c = compareMetric("inter_token_latency", [0, 0, 0, 1], [1, 2, 3, 4], { seed: 1, resamples: 200 });
    assert.equal(c.statistics.p50.ratio, null);
    assert.ok(c.statistics.avg.ratio === null || Number.isFinite(c.statistics.avg.ratio.hi));
  });

  it("rejects empty arms, non-finite values and bad options", () => {
    assert.throws(() => compareMetric("time_to_first_token", [], [1], { seed: 1 }), RangeError);
    assert.throws(() => compareMetric("time_to_first_token", [1, Infinity], [1], { seed: 1 }), RangeError);
    assert.throws(() => compareMetric("time_to_first_token", [1], [1], { seed: 1.5 }), RangeError);
    assert.throws(
      () => compareMetric("time_to_first_token", [1], [1], { seed: 1, resamples: 0 }),
      RangeError,
    );
    assert.throws(
      () => compareMetric("time_to_first_token", [1], [1], { seed: 1, confidence: 1 }),
      RangeError,
    );
  });
});

/** A comparison with chosen figures, to pin down verdict texts. */
function fixed(
  metric: MetricComparison["metric"],
  ratio: Estimate | null,
  difference: Estimate,
  p: number,
  largerIsBetter = false,
): MetricComparison {
  const stat = { baseline: 100, candidate: 100 * (ratio?.estimate ?? 1), difference, ratio };
  return {
    metric,
    unit: largerIsBetter ? "tokens/sec/user" : "ms",
    largerIsBetter,
    confidence: 0.95,
    resamples: 2000,
    baselineCount: 1000,
    candidateCount: 1000,
    statistics: { avg: stat, p50: stat, p90: stat, p99: stat },
    shift: { u: 0, z: 0, p, probabilityCandidateLower: 0.5 },
  };
}

describe("verdict", () => {
  const diff = { estimate: -1, lo: -2, hi: -0.5 };

  it("reports an improvement of a latency as a cut, with the interval of the cut", () => {
    const v = verdict(
      fixed("time_to_first_token", { estimate: 0.59, lo: 0.53, hi: 0.65 }, diff, 1e-6),
      "p99",
      NAMES,
    );
    assert.deepEqual(v, {
      metric: "time_to_first_token",
      statistic: "p99",
      direction: "improvement",
      text: "disagg-kv cuts TTFT p99 by 41 % (95 % CI 35–47 %) vs agg-round-robin — better; the distributions as a whole differ too (p < 0.001)",
    });
  });

  it("reports a regression of a latency as a rise", () => {
    const c = fixed("request_latency", { estimate: 1.23, lo: 1.1, hi: 1.35 }, diff, 0.012);
    const v = verdict(c, "avg", NAMES);
    assert.equal(v.direction, "regression");
    assert.equal(
      v.text,
      "disagg-kv raises request latency mean by 23 % (95 % CI 10–35 %) vs agg-round-robin — worse; " +
        "the distributions as a whole differ too (p = 0.012)",
    );
  });

  it("turns the direction round for a throughput, where larger is better", () => {
    for (const [ratio, direction, text] of [
      [
        { estimate: 1.12, lo: 1.05, hi: 1.2 },
        "improvement",
        /^disagg-kv raises output token throughput per user p50 by 12 % \(95 % CI 5\.0–20 %\) vs agg-round-robin — better/,
      ],
      [
        { estimate: 0.95, lo: 0.92, hi: 0.98 },
        "regression",
        /^disagg-kv cuts output token throughput per user p50 by 5\.0 % \(95 % CI 2\.0–8\.0 %\) vs agg-round-robin — worse/,
      ],
    ] as const) {
      const v = verdict(fixed("output_token_throughput_per_user", ratio, diff, 0.003, true), "p50", NAMES);
      assert.equal(v.direction, direction);
      assert.match(v.text, text);
    }
  });

  it("says no significant difference when the ratio's interval contains 1, whatever the rank test says", () => {
    const c = fixed("time_to_first_token", { estimate: 0.98, lo: 0.93, hi: 1.04 }, diff, 0.21);
    const v = verdict(c, "p99", NAMES);
    assert.equal(v.direction, "no-difference");
    assert.equal(
      v.text,
      "no significant difference in TTFT p99 between disagg-kv and agg-round-robin (ratio 0.98, 95 % CI 0.93–1.04); " +
        "nor do the distributions as a whole (p = 0.21)",
    );
    const shifted = verdict(
      fixed("time_to_first_token", { estimate: 1, lo: 0.9, hi: 1.1 }, diff, 0.004),
      "p50",
      NAMES,
    );
    assert.equal(shifted.direction, "no-difference");
    assert.match(shifted.text, /although the distributions as a whole differ \(p = 0\.0040\)$/);
  });

  it("falls back to the difference when there is no ratio", () => {
    const up = verdict(
      fixed("inter_token_latency", null, { estimate: 0.5, lo: 0.2, hi: 0.8 }, 0.5),
      "p50",
      NAMES,
    );
    assert.equal(up.direction, "regression");
    assert.match(
      up.text,
      /^disagg-kv raises ITL p50 by 0\.50 ms \(95 % CI 0\.20–0\.80 ms\) vs agg-round-robin — worse;/,
    );
    const none = verdict(
      fixed("inter_token_latency", null, { estimate: 0.1, lo: -0.2, hi: 0.4 }, 0.5),
      "avg",
      NAMES,
    );
    assert.equal(none.direction, "no-difference");
    assert.match(none.text, /\(\+0\.10 ms, 95 % CI -0\.20–\+0\.40 ms\)/);
  });

  it("honours alpha for the rank test", () => {
    const c = fixed("time_to_first_token", { estimate: 0.9, lo: 0.85, hi: 0.95 }, diff, 0.03);
    assert.match(
      verdict(c, "p50", NAMES).text,
      /— better; the distributions as a whole differ too \(p = 0\.030\)/,
    );
    assert.match(
      verdict(c, "p50", NAMES, { alpha: 0.01 }).text,
      /— better; a change in this statistic only: the distributions as a whole do not differ significantly \(p = 0\.030\)/,
    );
  });
});

describe("formatting", () => {
  it("formats numbers and p-values without locale", () => {
    assert.equal(formatNumber(1234.4), "1234");
    assert.equal(formatNumber(12.34), "12.3");
    assert.equal(formatNumber(1.234), "1.23");
    assert.equal(formatNumber(-0.001), "0.00");
    assert.equal(formatP(0.0004), "p < 0.001");
    assert.equal(formatP(0.01234), "p = 0.012");
    assert.equal(formatP(1), "p = 1.0");
  });
});

describe("compareArms and summarizeArm", () => {
  // Baseline: TTFT 100, 200, 300 ms; candidate: 50, 100, 150 ms. Every request streams 5 tokens 10 ms apart.
  const baseline = {
    name: "agg-round-robin",
    records: [
      streamed(0, 0, 100, 10, 5),
      streamed(1, 1000, 200, 10, 5),
      streamed(2, 2000, 300, 10, 5),
      makeRecord({
        session: 3,
        startMs: 2500,
        chunksMs: [],
        error: { code: 503, type: "Service Unavailable", message: "busy" },
      }),
    ],
  };
  const candidate = {
    name: "disagg-kv",
    records: [streamed(0, 0, 50, 10, 5), streamed(1, 1000, 100, 10, 5), streamed(2, 2000, 150, 10, 5)],
  };
  const slos = parseGoodput("time_to_first_token:120");

  it("summarizes each arm's metrics in display units, AIPerf's duration and goodput", () => {
    const r = summarizeArm(baseline, { seed: 1, slos });
    assert.equal(r.requestCount, 4);
    assert.equal(r.validCount, 3);
    // First start 0 ms, last response 2000 + 300 + 40 ms.
    assert.equal(r.durationS, 2.34);
    assert.deepEqual(r.metrics.time_to_first_token, {
      unit: "ms",
      count: 3,
      avg: 200,
      p50: 200,
      p90: 280,
      p99: 298,
    });
    assert.equal(r.metrics.inter_token_latency!.avg, 10);
    assert.equal(r.metrics.output_token_throughput_per_user!.p50, 100);
    assert.equal(r.metrics.request_latency!.p50, 240);
    // One of four requests meets TTFT ≤ 120 ms: the failed one counts against attainment.
    const g = r.goodput!;
    assert.equal(g.goodCount, 1);
    assert.equal(g.requestCount, 4);
    assert.deepEqual(g.attainment, wilsonInterval(1, 4));
    assert.equal(g.goodputPerS.estimate, 1 / 2.34);
    assert.equal(g.goodputPerS.hi, (wilsonInterval(1, 4).hi * 4) / 2.34);
    assert.equal(summarizeArm(baseline, { seed: 1 }).goodput, null);
    assert.equal(
      summarizeArm({ ...baseline, durationS: 10 }, { seed: 1, slos }).goodput!.goodputPerS.estimate,
      0.1,
    );
  });

  it("compares every metric both arms have, with goodput difference and verdicts", () => {
    const c = compareArms(baseline, candidate, { seed: 7, resamples: 400, slos });
    assert.deepEqual(
      c.metrics.map((m) => m.metric),
      [...COMPARE_METRIC_TAGS],
    );
    const ttft = c.metrics[0]!;
    assert.equal(ttft.statistics.avg.baseline, 200);
    assert.equal(ttft.statistics.avg.candidate, 100);
    assert.equal(ttft.statistics.avg.ratio!.estimate, 0.5);
    assert.equal(ttft.statistics.avg.difference.estimate, -100);
    // Every candidate TTFT ≤ its baseline counterpart: 1 tie (100 vs 100), 8 of 9 pairs baseline higher.
    assert.equal(ttft.shift.probabilityCandidateLower, (7 + 0.5) / 9);
    assert.equal(c.verdicts.length, COMPARE_METRIC_TAGS.length * COMPARE_STATISTICS.length);
    assert.deepEqual(c.settings, { seed: 7, resamples: 400, confidence: 0.95, alpha: 0.05 });
    // Candidate: 2 of 3 meet the SLO over 2.19 s; baseline 1 of 4 over 2.34 s.
    const g = c.goodput!;
    assert.deepEqual(g.attainmentDifference, moverDifference(wilsonInterval(1, 4), wilsonInterval(2, 3)));
    assert.ok(Math.abs(g.goodputDifference.estimate - (2 / 2.19 - 1 / 2.34)) < 1e-12);
    assert.equal(c.prefixCacheDifference, null);
    assert.deepEqual(compareArms(baseline, candidate, { seed: 7, resamples: 400, slos }), c);
  });

  it("reuses an arm's draws across comparisons that share a draw cache, with the same results", () => {
    const drawCache = new WeakMap();
    const options = { seed: 7, resamples: 300, slos };
    const first = compareArms(baseline, candidate, { ...options, drawCache });
    // The candidate again, now in the baseline's role (an attribution step from it), then the first pair again.
    const swapped = compareArms(candidate, baseline, { ...options, drawCache });
    const again = compareArms(baseline, candidate, { ...options, drawCache });
    assert.deepEqual(first, compareArms(baseline, candidate, options));
    assert.deepEqual(swapped, compareArms(candidate, baseline, options));
    assert.deepEqual(again, first);
    // One entry per arm and role: both arms were drawn as baseline and as candidate.
    assert.equal(drawCache.get(baseline)?.size, 2);
    assert.equal(drawCache.get(candidate)?.size, 2);
  });

  it("leaves out a metric one arm lacks (TTFT of non-streamed requests)", () => {
    const unstreamed = {
      name: "non-streaming",
      records: [0, 1, 2].map((i) =>
        makeRecord({ session: i, startMs: i * 100, chunksMs: [i * 100 + 80], output: 4, streaming: false }),
      ),
    };
    const c = compareArms(baseline, unstreamed, { seed: 1, resamples: 100 });
    assert.deepEqual(
      c.metrics.map((m) => m.metric),
      ["request_latency"],
    );
    assert.equal(c.candidate.metrics.time_to_first_token, null);
    assert.equal(c.goodput, null);
  });

  it("measures the prefix-cache hit rate as Σ cached / Σ prompt tokens over the records reporting it", () => {
    const withCache = (r: RequestRecord, cached: number | undefined): RequestRecord => ({
      ...r,
      cachedTokens: cached,
    });
    const arm = {
      name: "cache",
      records: [
        withCache(streamed(0, 0, 50, 10, 5, 1000), 900),
        withCache(streamed(1, 100, 50, 10, 5, 100), 0),
        withCache(streamed(2, 200, 50, 10, 5, 500), undefined),
        withCache(streamed(3, 300, 50, 10, 5, 400), 100),
      ],
    };
    const p = summarizeArm(arm, { seed: 2, resamples: 500 }).prefixCache!;
    assert.equal(p.records, 3);
    assert.equal(p.cachedTokens, 1000);
    assert.equal(p.promptTokens, 1500);
    assert.equal(p.hitRate.estimate, 1000 / 1500);
    assert.ok(p.hitRate.lo < p.hitRate.estimate && p.hitRate.estimate < p.hitRate.hi);
    assert.ok(p.hitRate.lo >= 0 && p.hitRate.hi <= 1);
    assert.equal(summarizeArm(candidate, { seed: 2 }).prefixCache, null);
    const garbled = { name: "bad", records: [withCache(streamed(0, 0, 50, 10, 5), -1)] };
    assert.throws(() => summarizeArm(garbled, { seed: 2 }), /cachedTokens must be a non-negative integer/);
  });

  it("compares hit rates over many requests, with an interval around the true difference", () => {
    const rng = createRng(3, "cache");
    const arm = (name: string, rate: number) => ({
      name,
      records: Array.from({ length: 2000 }, (_, i) => {
        const input = 200 + rng.int(2000);
        const r = streamed(i, i * 10, 50, 10, 5, input);
        return { ...r, cachedTokens: rng.next() < rate ? input : 0 };
      }),
    });
    const c = compareArms(arm("rr", 0.2), arm("kv", 0.6), { seed: 4, resamples: 1000 });
    const d = c.prefixCacheDifference!;
    assert.ok(covers(d, 0.4), JSON.stringify(d));
    assert.ok(d.hi - d.lo < 0.1);
    assert.ok(covers(c.candidate.prefixCache!.hitRate, 0.6));
  });
});

describe("detectOverload", () => {
  /** One request every `gapS` seconds for `count` requests, TTFT from `ttft(t)`. */
  function timings(count: number, gapS: number, ttft: (t: number, i: number) => number): RequestTiming[] {
    return Array.from({ length: count }, (_, i) => ({ sendS: i * gapS, ttftMs: ttft(i * gapS, i) }));
  }

  it("flags a linearly growing TTFT, with its slope per minute and window medians", () => {
    // 200 ms growing by 20 ms every second: 1,200 ms/min.
    const r = detectOverload(timings(1200, 0.5, (t) => 200 + 20 * t));
    assert.equal(r.overloaded, true);
    const e = r.ttft!;
    assert.equal(e.windowMedians.length, 10);
    assert.ok(Math.abs(e.slopePerMin - 1200) < 1e-6, `${e.slopePerMin}`);
    // Windows of 120 requests: the first spans 0–59.5 s, median send time 29.75 s.
    assert.ok(Math.abs(e.first - (200 + 20 * 29.75)) < 1e-9);
    assert.ok(Math.abs(e.last - (200 + 20 * 569.75)) < 1e-9);
    assert.ok(e.growth > 10);
    assert.ok(e.trendP < 1e-4);
    assert.equal(r.queue, null);
    assert.match(
      r.reason,
      /^overloaded: TTFT keeps growing, window median 795 → 11595 ms \(14\.6×\), \+1200 ms\/min/,
    );
  });

  it("flags a noisy growing TTFT", () => {
    const rng = createRng(1, "grow");
    const r = detectOverload(timings(600, 1, (t) => lognormal(rng, 300 + 15 * t, 0.6)));
    assert.equal(r.overloaded, true);
    assert.ok(Math.abs(r.ttft!.slopePerMin / 900 - 1) < 0.25, `${r.ttft!.slopePerMin}`);
  });

  it("does not flag stationary noise, however heavy, nor a few huge stalls at the end", () => {
    for (let seed = 0; seed < 40; seed++) {
      const rng = createRng(seed, "stationary");
      const r = detectOverload(timings(500, 0.2, () => lognormal(rng, 200, 1)));
      assert.equal(r.overloaded, false, `seed ${seed}: ${r.reason}`);
      assert.match(r.reason, /^no sustained growth: TTFT window median/);
    }
    const rng = createRng(99, "stalls");
    const r = detectOverload(timings(500, 0.2, (_, i) => (i > 490 ? 60_000 : lognormal(rng, 200, 0.3))));
    assert.equal(r.overloaded, false, r.reason);
  });

  it("does not flag a clear but small drift (TTFT up 10 % over the run)", () => {
    const rng = createRng(5, "drift");
    const r = detectOverload(timings(2000, 0.3, (t) => lognormal(rng, 200 * (1 + t / 6000), 0.1)));
    assert.ok(r.ttft!.trendP < 0.01, `trend p ${r.ttft!.trendP}`);
    assert.ok(r.ttft!.growth < 1.2);
    assert.equal(r.overloaded, false);
  });

  it("flags a growing queue even while TTFT of the requests that got through stays flat", () => {
    const rng = createRng(6, "queue");
    const reqs = timings(300, 1, () => lognormal(rng, 200, 0.3));
    const queue: QueueSample[] = Array.from({ length: 300 }, (_, i) => ({
      t_s: i,
      waiting: Math.floor(i / 10),
    }));
    const r = detectOverload(reqs, queue);
    assert.equal(r.overloaded, true);
    assert.equal(r.ttft!.growing, false);
    assert.equal(r.queue!.growing, true);
    assert.equal(r.queue!.unit, "requests");
    assert.ok(Math.abs(r.queue!.slopePerMin - 6) < 1e-9, `${r.queue!.slopePerMin}`);
    assert.match(r.reason, /^overloaded: queue keeps growing, window median 1\.00 → 28\.0 waiting/);
    // An idle queue with a blip is no overload: the floor of one waiting request keeps 0 → 1 from counting.
    const idle = queue.map((q) => ({ t_s: q.t_s, waiting: q.t_s > 270 ? 1 : 0 }));
    assert.equal(detectOverload(reqs, idle).overloaded, false);
  });

  it("orders points by time, so input order does not matter", () => {
    const reqs = timings(400, 1, (t) => 100 + 10 * t);
    const shuffled = [...reqs].reverse();
    assert.deepEqual(detectOverload(shuffled), detectOverload(reqs));
  });

  it("does not judge from too few requests", () => {
    const r = detectOverload(timings(50, 1, (t) => 100 + 100 * t));
    assert.equal(r.overloaded, false);
    assert.equal(r.ttft, null);
    assert.equal(r.reason, "not judged: 50 requests with a TTFT and no usable queue timeline (need 60)");
    // Smaller windows make the same data judgeable.
    assert.equal(
      detectOverload(
        timings(50, 1, (t) => 100 + 100 * t),
        undefined,
        { minPerWindow: 5 },
      ).overloaded,
      true,
    );
  });

  it("rejects bad options and non-finite inputs", () => {
    assert.throws(() => detectOverload([], undefined, { minWindows: 12 }), RangeError);
    assert.throws(() => detectOverload([], undefined, { growthFactor: 0.5 }), RangeError);
    assert.throws(() => detectOverload([{ sendS: Number.NaN, ttftMs: 1 }]), RangeError);
    assert.throws(() => detectOverload([], [{ t_s: 0, waiting: Infinity }]), RangeError);
  });

  it("is judged from an arm's records by summarizeArm", () => {
    const growing = {
      name: "overloaded",
      records: Array.from({ length: 300 }, (_, i) => streamed(i, i * 500, 100 + i * 20, 10, 3)),
    };
    const r = summarizeArm(growing, { seed: 1, resamples: 50 });
    assert.equal(r.overload.overloaded, true);
    // 20 ms more per request sent every 0.5 s: 2,400 ms/min.
    assert.ok(Math.abs(r.overload.ttft!.slopePerMin - 2400) < 1e-6);
    const steady = {
      ...growing,
      records: Array.from({ length: 300 }, (_, i) => streamed(i, i * 500, 100, 10, 3)),
    };
    assert.equal(summarizeArm(steady, { seed: 1, resamples: 50 }).overload.overloaded, false);
  });
});
