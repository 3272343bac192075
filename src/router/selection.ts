import type { Rng } from "../random.ts";

/** Dynamo's classic KV cost (lower is better): weight × prefill blocks + decode blocks. */
export function kvCost(prefillBlocks: number, decodeBlocks: number, overlapScoreWeight: number): number {
  return overlapScoreWeight * prefillBlocks + decodeBlocks;
}

/**
 * Picks the index of the lowest cost. At temperature 0: among the minima, the one with the smallest tree size (the
 * target caching least), then uniformly at random. Above 0: softmax over costs normalised by their range,
 * p ∝ exp(−(cost − min) / ((max − min) · T)), with a single uniform draw; all-equal costs are uniform.
 */
export function selectByCost(
  costs: ArrayLike<number>,
  treeSizes: ArrayLike<number>,
  temperature: number,
  rng: Rng,
): number {
  const n = costs.length;
  if (n === 1) return 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const c = costs[i]!;
    if (c < min) min = c;
    if (c > max) max = c;
  }
  if (temperature > 0) {
    if (max === min) return rng.int(n);
    const scale = (max - min) * temperature;
    let total = 0;
    for (let i = 0; i < n; i++) total += Math.exp(-(costs[i]! - min) / scale);
    let u = rng.next() * total;
    for (let i = 0; i < n; i++) {
      u -= Math.exp(-(costs[i]! - min) / scale);
      if (u < 0) return i;
    }
    return n - 1;
  }
  let bestTree = Number.POSITIVE_INFINITY;
  let ties = 0;
  for (let i = 0; i < n; i++) {
    if (costs[i] !== min) continue;
    const tree = treeSizes[i]!;
    if (tree < bestTree) {
      bestTree = tree;
      ties = 1;
    } else if (tree === bestTree) {
      ties++;
    }
  }
  // The k-th tie (k drawn uniformly) in index order.
  let k = ties === 1 ? 0 : rng.int(ties);
  for (let i = 0; i < n; i++) {
    if (costs[i] === min && treeSizes[i] === bestTree && k-- === 0) return i;
  }
  return n - 1;
}
