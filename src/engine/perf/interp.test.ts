import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { curveAt, lerp, segment, segmentWeight } from "./interp.ts";

const xs = [1, 2, 4, 8];
const ys = [10, 20, 30, 70];

describe("segment lookup", () => {
  it("finds the bracketing segment and clamps to the ends", () => {
    assert.equal(segment(xs, 0), 0);
    assert.equal(segment(xs, 1), 0);
    assert.equal(segment(xs, 1.5), 0);
    assert.equal(segment(xs, 2), 1);
    assert.equal(segment(xs, 7.9), 2);
    assert.equal(segment(xs, 8), 2);
    assert.equal(segment(xs, 100), 2);
    assert.equal(segment([5], 3), 0);
  });

  it("weights the upper end linearly", () => {
    assert.equal(segmentWeight(xs, 1, 3), 0.5);
    assert.equal(segmentWeight(xs, 2, 6), 0.5);
    assert.equal(segmentWeight([5], 0, 9), 0);
  });
});

describe("piecewise-linear interpolation", () => {
  it("reproduces every grid point and blends between them", () => {
    for (let i = 0; i < xs.length; i++) assert.equal(lerp(xs, ys, xs[i]!), ys[i]);
    assert.equal(lerp(xs, ys, 3), 25);
    assert.equal(lerp(xs, ys, 5), 40);
    assert.equal(lerp([7], [3], 100), 3);
  });
});

describe("curve reads outside the grid", () => {
  it("holds the first value below the grid", () => {
    assert.equal(curveAt(xs, ys, 0.5), 10);
  });

  it("interpolates inside", () => {
    assert.equal(curveAt(xs, ys, 6), 50);
  });

  it("scales linearly beyond the grid without a roofline", () => {
    assert.equal(curveAt(xs, ys, 16), 140);
  });

  it("holds the last point's utilization against a roofline", () => {
    // sol(x) = 1 + x: sol(8) = 9, sol(17) = 18, so the latency doubles.
    assert.equal(
      curveAt(xs, ys, 17, (x) => 1 + x),
      140,
    );
  });
});
