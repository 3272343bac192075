import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RankWork } from "../perf-model.ts";
import { createPolynomialModel } from "./polynomial.ts";

const close = (actual: number, expected: number, tol = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);

const rank = (prefill: number[], decodeSeqs: number, kvUsage: number): RankWork => ({
  prefill: prefill.map((tokens) => ({ tokens, pastTokens: 0 })),
  decode: Array.from({ length: decodeSeqs }, () => ({ contextTokens: 100 })),
  kvUsage,
});

describe("polynomial step-time model", () => {
  const m = createPolynomialModel();

  it("is named polynomial unless told otherwise", () => {
    assert.equal(m.name, "polynomial");
    assert.equal(createPolynomialModel({ name: "x" }).name, "x");
  });

  it("prices a prefill chunk by its new tokens", () => {
    // 4.209989e-7·1e6 + 1.518344e-2·1000 + 16.50142 = 0.4209989 + 15.18344 + 16.50142
    close(m.stepMs([rank([1000], 0, 0)]), 32.1058589);
    // 4.209989e-7·8192² = 67108864·4.209989e-7 = 28.2527579242496; 1.518344e-2·8192 = 124.38274048
    close(m.stepMs([rank([8192], 0, 0)]), 28.2527579242496 + 124.38274048 + 16.50142);
  });

  it("prices decode by KV usage once per step, whatever the batch", () => {
    close(m.stepMs([rank([], 1, 0)]), 5.74);
    // −25.74·0.25 + 54.01·0.5 + 5.74
    close(m.stepMs([rank([], 1, 0.5)]), 26.31);
    close(m.stepMs([rank([], 64, 0.5)]), 26.31);
    // −25.74 + 54.01 + 5.74
    close(m.stepMs([rank([], 1, 1)]), 34.01);
  });

  it("caps KV usage at 1", () => {
    close(m.stepMs([rank([], 1, 1.7)]), 34.01);
  });

  it("clamps decode at 1 ms", () => {
    const flat = createPolynomialModel({ decodeMs: [0, -10, 0.2] });
    close(flat.stepMs([rank([], 1, 0.5)]), 1);
    const custom = createPolynomialModel({ decodeMs: [0, 0, 0.2], minDecodeMs: 0.5 });
    close(custom.stepMs([rank([], 1, 0.5)]), 0.5);
  });

  it("clamps a negative prefill polynomial at 0", () => {
    const neg = createPolynomialModel({ prefillMs: [0, -1, 10] });
    close(neg.stepMs([rank([20], 0, 0)]), 0);
    close(neg.stepMs([rank([4], 0, 0)]), 6);
  });

  it("sums the chunks of a rank and adds one decode time", () => {
    // 32.1058589 (1000) + 24.198389725 (500: 0.105249725 + 7.59172 + 16.50142) + 26.31
    close(m.stepMs([rank([1000, 500], 3, 0.5)]), 82.614248625);
  });

  it("takes the slowest rank in lockstep", () => {
    const busy = rank([1000, 500], 3, 0.5);
    const idle = rank([], 0, 0);
    const decodeOnly = rank([], 8, 1);
    close(m.stepMs([idle, busy, decodeOnly]), 82.614248625);
    close(m.stepMs([idle, decodeOnly]), 34.01);
  });

  it("costs nothing without work, and nothing for a fully cached chunk", () => {
    assert.equal(m.stepMs([]), 0);
    assert.equal(m.stepMs([rank([], 0, 0.9)]), 0);
    assert.equal(m.stepMs([rank([0], 0, 0)]), 0);
  });

  it("rejects negative or non-numeric work", () => {
    assert.throws(() => m.stepMs([rank([-1], 0, 0)]), RangeError);
    assert.throws(() => m.stepMs([rank([Number.NaN], 0, 0)]), RangeError);
    assert.throws(() => m.stepMs([rank([], 1, -0.1)]), RangeError);
  });
});
