import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { EmpiricalSampler, roundHalfEven, searchCdf } from "./empirical-sampler.ts";

describe("empirical sampler", () => {
  it("draws values in proportion to their observed counts", () => {
    const sampler = new EmpiricalSampler([5, 1, 5, 5]);
    assert.deepEqual([...sampler.values], [1, 5]);
    const rng = createRng(1);
    let fives = 0;
    for (let i = 0; i < 40_000; i++) if (sampler.sample(rng) === 5) fives++;
    assert.ok(Math.abs(fives / 40_000 - 0.75) < 0.01, `${fives}`);
  });

  it("never picks an outcome of zero weight", () => {
    assert.equal(searchCdf([0, 0.5, 1], 0), 1);
    assert.equal(searchCdf([0.5, 0.5, 1], 0.5), 2);
    assert.equal(searchCdf([0.25, 1], 0.2), 0);
  });

  it("refuses an empty distribution", () => {
    assert.throws(() => new EmpiricalSampler([]), RangeError);
  });

  it("rounds halves to even like Python", () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 2, 3]);
  });
});
