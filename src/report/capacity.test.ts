import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { acrossTraces, type CapacityRun, capacityCurves, kneeOf } from "./capacity.ts";

const curve = (pts: [number, number][]) => pts.map(([rate, attainment]) => ({ rate, attainment }));
const near = (k: { status: string; rate: number | null }, status: string, rate: number) => {
  assert.equal(k.status, status);
  assert.ok(Math.abs(k.rate! - rate) < 1e-9, `rate ${k.rate} is not ${rate}`);
};

describe("the knee of an SLO-attainment curve", () => {
  const pts = (...p: [number, number][]) => curve(p);
  it("interpolates linearly between the last point at or above 90 % and the first below", () => {
    // 0.95 at 2 req/s, 0.85 at 4 req/s: 90 % is crossed half way.
    near(kneeOf(pts([1, 1], [2, 0.95], [4, 0.85], [8, 0.2])), "within", 3);
    // Exactly at the threshold still counts as holding it.
    near(kneeOf(pts([1, 0.9], [2, 0.5])), "within", 1);
  });

  it("takes the first crossing: a curve that recovers later does not move the knee", () => {
    near(kneeOf(pts([1, 1], [2, 0.8], [3, 0.95], [4, 0.99])), "within", 1.5);
  });

  it("says when the knee lies outside the swept range, either way", () => {
    assert.deepEqual(kneeOf(pts([1, 0.99], [2, 0.97])), { status: "above", rate: 2 });
    assert.deepEqual(kneeOf(pts([1, 0.5], [2, 0.3])), { status: "below", rate: null });
    assert.deepEqual(kneeOf([]), { status: "below", rate: null });
  });

  it("sorts the points by rate first", () => {
    near(kneeOf(pts([4, 0.85], [2, 0.95], [1, 1])), "within", 3);
  });
});

describe("replicates", () => {
  it("gives the mean with a 95 % t interval over the traces, clamped", () => {
    const e = acrossTraces([0.8, 0.9, 1.0]);
    assert.ok(Math.abs(e.estimate - 0.9) < 1e-12);
    // sd 0.1, n 3: half-width 4.303 · 0.1 / √3.
    assert.ok(Math.abs(e.hi - e.estimate - (4.303 * 0.1) / Math.sqrt(3)) < 1e-9);
    assert.equal(acrossTraces([0.8, 0.9, 1.0], [0, 1]).hi, 1);
    assert.deepEqual(acrossTraces([0.5]), { estimate: 0.5, lo: 0.5, hi: 0.5 });
  });
});

describe("capacity curves from runs", () => {
  const run = (arm: string, load: number, seed: number, attainment: number): CapacityRun => ({
    arm,
    load,
    traceSeed: seed,
    offeredRate: load * 2,
    gpus: 4,
    goodput: load * 2 * attainment,
    attainment: { estimate: attainment, lo: attainment - 0.02, hi: Math.min(1, attainment + 0.02) },
    ttftP50: 100 * load,
    ttftP99: 300 * load,
    itlP50: 10,
    itlP99: 20,
    outputTokensPerS: 400 * load,
    tokensPerSPerUser: 100 / load,
    overloaded: attainment < 0.5,
  });

  it("groups by arm and load, averages over the traces, normalises per GPU and finds each knee", () => {
    const runs = [
      run("a", 1, 1, 1),
      run("a", 1, 2, 0.98),
      run("a", 2, 1, 0.7),
      run("a", 2, 2, 0.74),
      run("b", 1, 1, 1),
      run("b", 1, 2, 1),
      run("b", 2, 1, 0.96),
      run("b", 2, 2, 0.94),
    ];
    const [a, b] = capacityCurves(runs);
    assert.equal(a!.arm, "a");
    assert.equal(a!.points.length, 2);
    assert.ok(Math.abs(a!.points[0]!.attainment!.estimate - 0.99) < 1e-12);
    assert.equal(a!.points[1]!.goodputPerGpu, (4 * 0.72) / 4);
    assert.equal(a!.points[1]!.outputTokensPerSPerGpu, 200);
    assert.equal(a!.points[1]!.overloaded, 0);
    assert.equal(a!.knee!.status, "within");
    assert.ok(a!.knee!.rate! > 2 && a!.knee!.rate! < 4);
    // The knee's interval brackets its estimate.
    assert.ok(a!.knee!.lo.rate! <= a!.knee!.rate! && a!.knee!.rate! <= a!.knee!.hi.rate!);
    assert.deepEqual({ status: b!.knee!.status, rate: b!.knee!.rate }, { status: "above", rate: 4 });
  });

  it("has no knee without SLOs, and no per-GPU figures without a GPU count", () => {
    const bare = { ...run("a", 1, 1, 1), attainment: null, goodput: null, gpus: Number.NaN };
    const [c] = capacityCurves([bare]);
    assert.equal(c!.knee, null);
    assert.equal(c!.points[0]!.goodputPerGpu, null);
    assert.equal(c!.points[0]!.outputTokensPerSPerGpu, null);
  });
});
