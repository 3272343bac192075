import type { RankWork, StepTimeModel } from "../perf-model.ts";

/** Coefficients of `c2·x² + c1·x + c0`, highest power first. */
export type Quadratic = readonly [c2: number, c1: number, c0: number];

/**
 * Dynamo mocker's current polynomial (dynamo-spec §3.5, `lib/mocker` perf model): prefill over N new tokens of one
 * chunk, in ms.
 */
export const MOCKER_PREFILL_MS: Quadratic = [4.209989e-7, 1.518344e-2, 1.650142e1];
/** Decode step in ms over p = active KV tokens / KV capacity (dynamo-spec §3.5). */
export const MOCKER_DECODE_MS: Quadratic = [-25.74, 54.01, 5.74];
/** The mocker clamps every decode step to at least 1 ms so token timestamps never coincide (dynamo-spec §3.5). */
export const MOCKER_MIN_DECODE_MS = 1;

export interface PolynomialModelOptions {
  /** Model name reported by `StepTimeModel.name`; default `polynomial`. */
  name?: string;
  prefillMs?: Quadratic;
  decodeMs?: Quadratic;
  minDecodeMs?: number;
}

function quad(c: Quadratic, x: number): number {
  return (c[0] * x + c[1]) * x + c[2];
}

/**
 * The mocker's polynomial step time. Its classic scheduler prices each prefill chunk separately (batch size 1), so
 * a rank's step is the sum of its chunk times plus one decode time when anything decodes; ranks of a DP worker run
 * in lockstep, so the step is the slowest rank's. A chunk of 0 new tokens costs nothing, as a fully cached prompt
 * does in the mocker, and the polynomial's constant term makes every other chunk cost at least ~16.5 ms.
 */
export function createPolynomialModel(opts: PolynomialModelOptions = {}): StepTimeModel {
  const prefill = opts.prefillMs ?? MOCKER_PREFILL_MS;
  const decode = opts.decodeMs ?? MOCKER_DECODE_MS;
  const minDecode = opts.minDecodeMs ?? MOCKER_MIN_DECODE_MS;
  const name = opts.name ?? "polynomial";

  const rankMs = (r: RankWork): number => {
    let ms = 0;
    for (const c of r.prefill) {
      if (!(c.tokens >= 0)) throw new RangeError(`prefill chunk tokens must be >= 0, got ${c.tokens}`);
      if (c.tokens > 0) ms += Math.max(0, quad(prefill, c.tokens));
    }
    if (r.decode.length > 0) {
      if (!(r.kvUsage >= 0)) throw new RangeError(`kvUsage must be >= 0, got ${r.kvUsage}`);
      // Recent mocker code caps the usage at 1 before evaluating the polynomial.
      ms += Math.max(minDecode, quad(decode, Math.min(1, r.kvUsage)));
    }
    return ms;
  };

  return {
    name,
    stepMs(ranks: readonly RankWork[]): number {
      let max = 0;
      for (const r of ranks) {
        const ms = rankMs(r);
        if (ms > max) max = ms;
      }
      return max;
    },
  };
}
