import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { armFigures, type SettingRun, sensitivityRows, settingVerdicts } from "./bounds-report.ts";

const summary = (goodput: number, ttft: number, itl: number) => ({
  request_count: { avg: 100 },
  good_request_count: { avg: goodput * 50 },
  goodput: { avg: goodput },
  request_throughput: { avg: 2 },
  time_to_first_token: { avg: ttft, p99: 3 * ttft },
  inter_token_latency: { avg: itl },
  request_latency: { avg: 10 * ttft },
});
const run = (label: string, a: number, b: number, vary?: SettingRun["vary"]): SettingRun => ({
  label,
  bound: "nominal",
  ...(vary ? { vary } : {}),
  arms: [
    { name: "A", summary: summary(a, 1000, 50) },
    { name: "B", summary: summary(b, 500, 20) },
  ],
});

describe("verdict across step-time settings", () => {
  it("reads each arm's decision figures from its AIPerf summary", () => {
    const f = armFigures(summary(1, 1000, 50));
    assert.deepEqual(
      [f.goodput, f.sloAttainment, f.throughput, f.ttftAvg, f.ttftP99, f.itlAvg],
      [1, 0.5, 2, 1000, 3000, 50],
    );
  });

  it("puts B against A under each setting and ranks parameters by how far they swing the goodput difference", () => {
    const nominal = settingVerdicts([run("nominal", 1, 1.5)], "A", "B")[0]!;
    assert.equal(nominal.goodputDelta, 0.5);
    assert.equal(nominal.ttftRatio, 0.5);
    const varied = [
      run("host optimistic", 1.2, 1.5, { parameter: "host", bound: "optimistic" }),
      run("host pessimistic", 0.9, 1.5, { parameter: "host", bound: "pessimistic" }),
      run("moe pessimistic", 0.2, 1.4, { parameter: "moe", bound: "pessimistic" }),
    ];
    const rows = sensitivityRows(nominal, varied, settingVerdicts(varied, "A", "B"));
    assert.deepEqual(
      rows.map((r) => [r[0], r[3]]),
      [
        ["moe", "0.700"],
        ["host", "0.300"],
      ],
    );
    assert.equal(rows[0]![1], "= nominal");
    assert.throws(() => settingVerdicts([run("x", 1, 1)], "A", "C"), /has no arm C/);
  });
});
