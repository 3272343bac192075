import { ServelabError } from "../errors.ts";
import { createRng } from "../random.ts";
import type { TraceRow } from "../trace/types.ts";

export interface SyntheticOptions {
  inputMean: number;
  inputStddev: number;
  outputMean?: number | undefined;
  outputStddev: number;
  /** Distinct prompts to draw from (AIPerf's `--num-dataset-entries`). */
  entries: number;
  blockSize: number;
  seed: number;
}

/** Largest synthetic prompt: the same bound a trace row has. */
const MAX_SYNTHETIC_TOKENS = 10_000_000;

/**
 * AIPerf's synthetic dataset (`--synthetic-input-tokens-mean/-stddev`, `--output-tokens-mean/-stddev`): `entries`
 * prompts whose lengths are drawn from normal distributions (rounded, at least 1; a stddev of 0 gives exactly the
 * mean), seeded. Each prompt gets block ids of its own, so no two share a prefix, as AIPerf's random prompts do not;
 * prompts are then built from the corpus like any trace row's.
 */
export function syntheticRows(o: SyntheticOptions): TraceRow[] {
  for (const [name, v] of [
    ["--synthetic-input-tokens-mean", o.inputMean],
    ["--output-tokens-mean", o.outputMean ?? 1],
  ] as const)
    if (!Number.isFinite(v) || v < 1 || v > MAX_SYNTHETIC_TOKENS)
      throw new ServelabError("USAGE", `${name} must be between 1 and ${MAX_SYNTHETIC_TOKENS}, got ${v}`);
  if (!Number.isSafeInteger(o.entries) || o.entries < 1 || o.entries > 1_000_000)
    throw new ServelabError("USAGE", `--num-dataset-entries must be a whole number from 1 to 1000000`);
  const rng = createRng(o.seed, "synthetic-dataset");
  // Box–Muller: two uniforms give one standard normal draw.
  const normal = (mean: number, sd: number) => {
    if (sd === 0) return Math.round(mean);
    const u = 1 - rng.next();
    const v = rng.next();
    return Math.round(mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  };
  const clamp = (n: number) => Math.min(MAX_SYNTHETIC_TOKENS, Math.max(1, n));
  let nextBlock = 0;
  return Array.from({ length: o.entries }, () => {
    const input = clamp(normal(o.inputMean, o.inputStddev));
    const output = o.outputMean === undefined ? 0 : clamp(normal(o.outputMean, o.outputStddev));
    const blocks = Math.ceil(input / o.blockSize);
    const hash_ids = Array.from({ length: blocks }, () => nextBlock++);
    return { input_length: input, output_length: output, hash_ids };
  });
}
