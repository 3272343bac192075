import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BarSeriesOption, EChartsOption, LineSeriesOption } from "echarts";
import {
  type ArmChartData,
  armColor,
  cdfChartOption,
  downsampleCdf,
  envelopeDownsample,
  goodputChartOption,
  naturalCompare,
  prefersLogScale,
  renderChartSvg,
  targetChartOption,
  timeSeriesChartOption,
} from "./charts.ts";

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG): fixtures must not change between runs. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A latency-like sample: log-uniform over three orders of magnitude. */
function spreadValues(n: number, seed: number, lo = 10): number[] {
  const r = lcg(seed);
  return Array.from({ length: n }, () => lo * 10 ** (3 * r()));
}

function arm(name: string, seed: number, n = 400): ArmChartData {
  const r = lcg(seed);
  const sendTimesS = Array.from({ length: n }, (_, i) => i * 0.25);
  const ttftMs = sendTimesS.map((t) => 50 + 40 * r() + t * 2);
  return {
    name,
    values: {
      time_to_first_token: ttftMs,
      request_latency: Float64Array.from(spreadValues(n, seed + 1, 100)),
      inter_token_latency: Array.from({ length: n }, () => 20 + 5 * r()),
    },
    sendTimesS,
    ttftMs,
    timeline: Array.from({ length: 200 }, (_, i) => ({
      t_s: i * 0.5,
      waiting: Math.floor(i / 10),
      running: 8,
      kv_usage: 0.4,
    })),
    targets: Array.from({ length: 8 }, (_, i) => ({
      target: `w${i >> 2}/dp${i % 4}`,
      requests: 40 + i,
      hit_rate: i / 10,
    })),
    goodput: { value: 3.2, lo: 2.9, hi: 3.5 },
    sloAttainment: { value: 0.8, lo: 0.75, hi: 0.85 },
  };
}

const ARMS = [arm("agg-round-robin", 1), arm("disagg-kv", 2)];

function lines(option: EChartsOption): LineSeriesOption[] {
  return option.series as LineSeriesOption[];
}

function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

describe("downsampleCdf", () => {
  it("returns every sample when there are few enough", () => {
    assert.deepEqual(downsampleCdf([1, 2, 2, 5]), [
      [1, 0.25],
      [2, 0.5],
      [2, 0.75],
      [5, 1],
    ]);
    assert.deepEqual(downsampleCdf([]), []);
  });

  it("thins a large sample to actual CDF points, keeping ends, anchors and monotonicity", () => {
    const sorted = Float64Array.from(spreadValues(100_000, 7)).sort();
    const n = sorted.length;
    for (const log of [false, true]) {
      const pts = downsampleCdf(sorted, { log });
      assert.ok(pts.length <= 500, `${pts.length} points`);
      assert.ok(pts.length > 200, `${pts.length} points: too coarse`);
      assert.deepEqual(pts[0], [sorted[0], 1 / n]);
      assert.deepEqual(pts.at(-1), [sorted[n - 1], 1]);
      for (let i = 1; i < pts.length; i++) {
        assert.ok(pts[i]![0] >= pts[i - 1]![0], "values ascend");
        assert.ok(pts[i]![1] > pts[i - 1]![1], "fractions strictly ascend");
      }
      const ranks = new Set<number>();
      for (const [x, y] of pts) {
        const rank = Math.round(y * n) - 1;
        assert.equal(x, sorted[rank], "each point is a sample at its rank");
        ranks.add(rank);
      }
      for (const p of [50, 90, 99]) assert.ok(ranks.has(Math.ceil((p / 100) * n) - 1), `p${p} kept`);
      // No two neighbours further apart than a small slice of the fraction range.
      for (let i = 1; i < pts.length; i++) assert.ok(pts[i]![1] - pts[i - 1]![1] <= 0.005);
    }
  });

  it("keeps both sides of a jump in value", () => {
    const sorted = Float64Array.from({ length: 10_000 }, (_, i) => (i < 9_990 ? 1 + i / 10_000 : 1000 + i));
    const pts = downsampleCdf(sorted);
    const xs = pts.map((p) => p[0]);
    assert.ok(xs.includes(sorted[9_989]!), "last value before the jump");
    assert.ok(xs.includes(sorted[9_990]!), "first value after the jump");
  });

  it("handles all-equal values", () => {
    const pts = downsampleCdf(new Float64Array(5_000).fill(3));
    assert.ok(pts.length <= 500);
    assert.ok(pts.every(([x]) => x === 3));
    assert.deepEqual(pts.at(-1), [3, 1]);
  });

  it("rejects unsorted input and tiny budgets", () => {
    assert.throws(() => downsampleCdf([2, 1]), RangeError);
    assert.throws(() => downsampleCdf([1, Number.NaN]), RangeError);
    assert.throws(() => downsampleCdf([1, 2], { maxPoints: 4 }), RangeError);
  });
});

describe("helpers", () => {
  it("sorts target names naturally", () => {
    const names = ["w1/dp10", "w1/dp2", "w0/dp1", "w10/dp0", "w2/dp0", "w1/dp02"];
    assert.deepEqual(names.sort(naturalCompare), [
      "w0/dp1",
      "w1/dp2",
      "w1/dp02",
      "w1/dp10",
      "w2/dp0",
      "w10/dp0",
    ]);
  });

  it("prefers a log scale only for positive values spanning orders of magnitude", () => {
    const wide = Float64Array.from(spreadValues(1_000, 3)).sort();
    assert.equal(prefersLogScale([wide]), true);
    assert.equal(prefersLogScale([Float64Array.from([0, ...wide])]), false);
    assert.equal(prefersLogScale([Float64Array.from([100, 150, 200])]), false);
    // Two narrow arms far apart together span orders of magnitude.
    assert.equal(prefersLogScale([Float64Array.from([10, 12]), Float64Array.from([900, 1000])]), true);
    assert.equal(prefersLogScale([]), false);
  });

  it("keeps spikes when thinning a timeline", () => {
    const xs = Array.from({ length: 10_000 }, (_, i) => i);
    const ys = xs.map((x) => (x === 4_321 ? 999 : x % 3));
    const thin = envelopeDownsample(xs, ys, 100);
    assert.ok(thin.length <= 400);
    assert.deepEqual(thin[0], [0, 0]);
    assert.deepEqual(thin.at(-1), [9_999, 9_999 % 3]);
    assert.ok(thin.some(([x, y]) => x === 4_321 && y === 999));
    for (let i = 1; i < thin.length; i++) assert.ok(thin[i]![0] > thin[i - 1]![0]);
  });
});

describe("cdfChartOption", () => {
  it("draws one step line per arm from 0 to 1", () => {
    const option = cdfChartOption(ARMS, "request_latency");
    const series = lines(option);
    assert.deepEqual(
      series.map((s) => s.name),
      ["agg-round-robin", "disagg-kv"],
    );
    for (const [i, s] of series.entries()) {
      const data = s.data as Array<[number, number]>;
      assert.equal(s.step, "end");
      assert.equal(s.color, armColor(i));
      assert.equal(data[0]![1], 0);
      assert.equal(data.at(-1)![1], 1);
      assert.ok(data.length <= 501);
    }
    const x = asArray(option.xAxis)[0]!;
    assert.equal(x.type, "log", "latencies over three orders of magnitude");
    assert.match(String(x.name), /^Request Latency \(ms\)/);
    const y = asArray(option.yAxis)[0]!;
    assert.deepEqual([y.min, y.max], [0, 1]);
    const guides = (series[0]!.markLine!.data as Array<{ yAxis: number }>).map((d) => d.yAxis);
    assert.deepEqual(guides, [0.5, 0.9, 0.99]);
  });

  it("uses a linear axis for narrow values, or when a log axis could not show them", () => {
    assert.equal(asArray(cdfChartOption(ARMS, "inter_token_latency").xAxis)[0]!.type, "value");
    const withZero: ArmChartData = { ...ARMS[0]!, values: { request_latency: [0, 1, 1000, 10_000] } };
    assert.equal(
      asArray(cdfChartOption([withZero], "request_latency", { xScale: "log" }).xAxis)[0]!.type,
      "value",
    );
    assert.equal(
      asArray(cdfChartOption(ARMS, "inter_token_latency", { xScale: "log" }).xAxis)[0]!.type,
      "log",
    );
  });

  it("gives an arm without the metric an empty series and ignores non-finite values", () => {
    const empty: ArmChartData = { name: "empty", values: {}, sendTimesS: [], ttftMs: [] };
    const partial: ArmChartData = {
      ...empty,
      name: "partial",
      values: { request_latency: [5, Number.NaN, 7] },
    };
    const series = lines(cdfChartOption([empty, partial], "request_latency"));
    assert.deepEqual(series[0]!.data, []);
    assert.deepEqual(series[1]!.data, [
      [5, 0],
      [5, 0.5],
      [7, 1],
    ]);
  });
});

describe("timeSeriesChartOption", () => {
  it("has a TTFT panel and a queue panel sharing the time axis", () => {
    const option = timeSeriesChartOption(ARMS);
    const series = lines(option);
    assert.equal(asArray(option.grid).length, 2);
    const xAxes = asArray(option.xAxis);
    assert.equal(xAxes.length, 2);
    assert.equal(xAxes[0]!.max, xAxes[1]!.max);
    assert.deepEqual(
      series.map((s) => [s.name, s.xAxisIndex]),
      [
        ["agg-round-robin", 0],
        ["agg-round-robin p90", 0],
        ["disagg-kv", 0],
        ["disagg-kv p90", 0],
        ["agg-round-robin", 1],
        ["disagg-kv", 1],
      ],
    );
    // 400 requests over 100 s: 1 s windows, each median between its p50 neighbours' range.
    const p50 = series[0]!.data as Array<[number, number]>;
    assert.equal(p50.length, 100);
    assert.equal(p50[0]![0], 0.5);
    const p90 = series[1]!.data as Array<[number, number]>;
    for (let i = 0; i < p50.length; i++) assert.ok(p90[i]![1] >= p50[i]![1]);
    assert.deepEqual((series[4]!.data as number[][]).slice(0, 2), [
      [0, 0],
      [0.5, 0],
    ]);
  });

  it("breaks the line where no request was sent and honours the window width", () => {
    const gap: ArmChartData = { name: "gap", values: {}, sendTimesS: [0.1, 0.2, 10.1], ttftMs: [10, 30, 50] };
    const option = timeSeriesChartOption([gap], { windowS: 1 });
    assert.equal(asArray(option.grid).length, 1, "no timeline, no queue panel");
    assert.deepEqual(lines(option)[0]!.data, [
      [0.5, 20],
      [5.5, null],
      [10.5, 50],
    ]);
  });

  it("rejects send times and TTFTs of different lengths", () => {
    const bad: ArmChartData = { name: "bad", values: {}, sendTimesS: [1, 2], ttftMs: [1] };
    assert.throws(() => timeSeriesChartOption([bad]), RangeError);
  });
});

describe("targetChartOption", () => {
  it("groups requests and hit rate per target by arm, in natural order", () => {
    const b: ArmChartData = {
      ...ARMS[1]!,
      targets: [
        { target: "w0/dp10", requests: 5, hit_rate: 0.5 },
        { target: "w0/dp2", requests: 7, hit_rate: 0.25 },
      ],
    };
    const a: ArmChartData = { ...ARMS[0]!, targets: [{ target: "w0/dp2", requests: 3, hit_rate: 1 }] };
    const noTargets: ArmChartData = { ...ARMS[0]!, name: "none", targets: undefined };
    const option = targetChartOption([a, noTargets, b]);
    const xAxes = asArray(option.xAxis);
    assert.deepEqual((xAxes[1] as { data: string[] }).data, ["w0/dp2", "w0/dp10"]);
    const series = option.series as BarSeriesOption[];
    assert.deepEqual(
      series.map((s) => [s.name, s.yAxisIndex, s.data]),
      [
        ["agg-round-robin", 0, [3, null]],
        ["agg-round-robin", 1, [100, null]],
        ["disagg-kv", 0, [7, 5]],
        ["disagg-kv", 1, [25, 50]],
      ],
    );
    // The third arm keeps the third colour even though the second has no bars.
    assert.equal(series[2]!.color, armColor(2));
  });

  it("labels every one of many targets, vertically", () => {
    const many: ArmChartData = {
      ...ARMS[0]!,
      targets: Array.from({ length: 64 }, (_, i) => ({
        target: `w${i >> 3}/dp${i & 7}`,
        requests: i,
        hit_rate: 0,
      })),
    };
    const axis = asArray(targetChartOption([many]).xAxis)[1] as { data: string[]; axisLabel: object };
    assert.equal(axis.data.length, 64);
    assert.deepEqual(axis.axisLabel, { interval: 0, rotate: 90, fontSize: 9 });
  });
});

describe("goodputChartOption", () => {
  it("draws a bar per arm and its interval, attainment in percent", () => {
    const partial: ArmChartData = { ...ARMS[1]!, goodput: { value: 2 }, sloAttainment: undefined };
    const series = goodputChartOption([ARMS[0]!, partial]).series as Array<
      BarSeriesOption | LineSeriesOption
    >;
    const values = (s: BarSeriesOption | LineSeriesOption) =>
      (s.data as Array<{ value: unknown } | unknown[]>).map((d) =>
        "value" in (d as object) ? (d as { value: unknown }).value : d,
      );
    assert.deepEqual(
      series.map((s) => [s.type, s.name, s.yAxisIndex]),
      [
        ["bar", "goodput", 0],
        ["line", "agg-round-robin interval", 0],
        ["bar", "SLO attainment", 1],
        ["line", "agg-round-robin interval", 1],
      ],
    );
    assert.deepEqual(values(series[0]!), [3.2, 2]);
    assert.deepEqual(values(series[1]!), [
      ["agg-round-robin", 2.9],
      ["agg-round-robin", 3.5],
    ]);
    assert.deepEqual(values(series[2]!), [80, null]);
    assert.deepEqual(values(series[3]!), [
      ["agg-round-robin", 75],
      ["agg-round-robin", 85],
    ]);
  });
});

describe("renderChartSvg", () => {
  const all = (arms: readonly ArmChartData[]): EChartsOption[] => [
    cdfChartOption(arms, "time_to_first_token"),
    cdfChartOption(arms, "inter_token_latency"),
    cdfChartOption(arms, "request_latency"),
    timeSeriesChartOption(arms),
    targetChartOption(arms),
    goodputChartOption(arms),
  ];

  it("renders a sized SVG holding the arm names", () => {
    const named = [{ ...ARMS[0]!, name: "a<b&c" }, ARMS[1]!];
    for (const option of all(named)) {
      const svg = renderChartSvg(option, { width: 800, height: 500 });
      assert.match(svg, /^<svg width="800" height="500" /);
      assert.ok(svg.includes("a&lt;b&amp;c"), "escaped arm name");
      assert.ok(svg.includes("disagg-kv"));
    }
  });

  it("is byte-identical across renders, whatever was rendered in between", () => {
    const option = cdfChartOption(ARMS, "time_to_first_token");
    const before = JSON.stringify(option);
    const first = renderChartSvg(option, { idPrefix: "ttft" });
    renderChartSvg(goodputChartOption(ARMS));
    renderChartSvg(timeSeriesChartOption(ARMS));
    const second = renderChartSvg(option, { idPrefix: "ttft" });
    assert.equal(second, first);
    assert.equal(JSON.stringify(option), before, "the option is left as it was");
  });

  it("names ids and classes after the prefix, consistently", () => {
    const svg = renderChartSvg(goodputChartOption(ARMS), { idPrefix: "goodput" });
    assert.doesNotMatch(svg, /zr\d+-/);
    const ids = [...svg.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(ids.length > 0);
    for (const id of ids) assert.match(id, /^goodput-/);
    // Every reference points at an id that exists, every styled class is used.
    for (const m of svg.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]!), m[1]);
    for (const m of svg.matchAll(/^\.([\w-]+):hover/gm)) assert.ok(svg.includes(`class="${m[1]}"`), m[1]);
    assert.throws(() => renderChartSvg({}, { idPrefix: "1bad" }), RangeError);
    assert.throws(() => renderChartSvg({}, { width: 0 }), RangeError);
  });

  it("does not throw on degenerate input", () => {
    const one: ArmChartData = {
      name: "solo",
      values: { time_to_first_token: [42], request_latency: [42], inter_token_latency: [] },
      sendTimesS: [0],
      ttftMs: [42],
      timeline: [{ t_s: 0, waiting: 0, running: 1, kv_usage: 0 }],
      targets: [{ target: "w0", requests: 1, hit_rate: 0 }],
      goodput: { value: 0 },
      sloAttainment: { value: 1, lo: 1, hi: 1 },
    };
    const flat: ArmChartData = {
      name: "flat",
      values: {
        time_to_first_token: new Float64Array(1000).fill(7),
        request_latency: new Array(1000).fill(7),
      },
      sendTimesS: new Array(1000).fill(0),
      ttftMs: new Array(1000).fill(7),
      targets: [{ target: "w0", requests: 0, hit_rate: Number.NaN }],
    };
    const nothing: ArmChartData = { name: "nothing", values: {}, sendTimesS: [], ttftMs: [] };
    for (const arms of [[], [one], [flat], [nothing], [one, flat, nothing]]) {
      for (const [i, option] of all(arms).entries()) {
        const svg = renderChartSvg(option);
        assert.match(svg, /<\/svg>$/);
        // The per-target chart (index 4) leaves out arms without targets; every other chart names every arm.
        for (const a of arms)
          if (i !== 4 || a.targets) assert.ok(svg.includes(a.name), `${a.name} in chart ${i}`);
      }
    }
  });
});
