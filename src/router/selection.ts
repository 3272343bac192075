import type { Rng } from "../random.ts";

/** One candidate target's figures for the KV cost (all in blocks). */
export interface CostInputs {
  target: number;
  /** Prefill work if the request lands here: queued prefill plus this request's uncached prompt. */
  prefillBlocks: number;
  /** KV blocks active here if the request lands here. */
  decodeBlocks: number;
  /** Blocks the target holds in the KV index (fewest wins a tie). */
  treeSize: number;
}

/** Dynamo's classic KV cost (lower is better): weight × prefill blocks + decode blocks. */
export function kvCost(c: CostInputs, overlapScoreWeight: number): number {
  return overlapScoreWeight * c.prefillBlocks + c.decodeBlocks;
}

/**
 * Picks the target of lowest cost. At temperature 0: among the minima, the one with the smallest tree size, then
 * uniformly at random. Above 0: softmax over costs normalised by their range,
 * p ∝ exp(−(cost − min) / ((max − min) · T)), with a single uniform draw; all-equal costs are uniform.
 */
export function selectByCost(
  candidates: readonly CostInputs[],
  costs: readonly number[],
  temperature: number,
  rng: Rng,
): number {
  if (candidates.length === 1) return 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const c of costs) {
    if (c < min) min = c;
    if (c > max) max = c;
  }
  if (temperature > 0 && max === min) return rng.int(candidates.length);
  if (temperature > 0) {
    const range = max - min;
    const weights = costs.map((c) => Math.exp(-(c - min) / (range * temperature)));
    const total = weights.reduce((a, b) => a + b, 0);
    let u = rng.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u < 0) return i;
    }
    return weights.length - 1;
  }
  let best: number[] = [];
  let bestTree = Number.POSITIVE_INFINITY;
  for (let i = 0; i < costs.length; i++) {
    if (costs[i] !== min) continue;
    const tree = candidates[i]!.treeSize;
    if (tree < bestTree) {
      bestTree = tree;
      best = [i];
    } else if (tree === bestTree) {
      best.push(i);
    }
  }
  return best.length === 1 ? best[0]! : best[rng.int(best.length)]!;
}
