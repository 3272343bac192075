/** What one attention-DP rank computes in one engine step. */
export interface RankWork {
  /** Prefill chunks this step: tokens computed, and tokens of the same sequence already in KV before them. */
  prefill: readonly { tokens: number; pastTokens: number }[];
  /** Decoding sequences, one new token each, with the context length each attends to. */
  decode: readonly { contextTokens: number }[];
  /** Fraction (0–1) of the rank's KV-cache capacity in use (the polynomial model's decode input). */
  kvUsage: number;
}

/**
 * Step-time model: how long one engine step takes. A worker with attention data parallelism runs its ranks in
 * lockstep (`ranks.length` = DP size, 1 for a plain worker); with expert-parallel MoE, a step lasts as long as the
 * slowest rank's attention plus the MoE and communication for the tokens of all ranks.
 */
export interface StepTimeModel {
  readonly name: string;
  /** Milliseconds for one step; 0 when there is no work. */
  stepMs(ranks: readonly RankWork[]): number;
}
