import type { EngineSettings } from "../engine/engine-worker.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";

/** A small engine for live-server tests: 16-token blocks, room for thousands of blocks, prefix caching on. */
export const TEST_ENGINE: EngineSettings = {
  maxBatchSize: 8,
  maxNumTokens: 4096,
  chunkedPrefill: true,
  blockSize: 16,
  prefixCaching: true,
  kvCapacityBlocks: 4096,
  watermark: 0.01,
};

/** Every step takes `ms` on the wall clock, whatever it computes. */
export function fixedSteps(ms: number): StepTimeModel {
  return { name: "fixed", stepMs: () => ms };
}
