import type { PerfSetting } from "../engine/perf/bounds.ts";
import type { Recipe } from "../recipe/schema.ts";

/**
 * One arm of a recipe to run at one load on one trace, leaving AIPerf-compatible artifacts (`profile_export.jsonl`,
 * `profile_export_aiperf.json`, …) in `dir`. Every backend takes these and nothing else, so that a sweep, a set of
 * replicates or a plain A/B is planned once whatever runs it.
 */
export interface ArmRunRequest {
  recipe: Recipe;
  arm: string;
  /** What progress and errors call the run. */
  label: string;
  /** Absolute. */
  dir: string;
  /** The trace to replay, already synthesized. */
  traceFile: string;
  /** Arrival-rate factor (Dynamo's `--speedup-ratio`). */
  load: number;
  /** The simulator's step-time profile bounds (nominal when absent); other backends have none. */
  perfSetting?: PerfSetting | undefined;
}

export interface BackendHooks {
  onProgress(label: string, done: number, total: number): void;
  /** A run's artifacts are complete in its directory. */
  onDone?(request: ArmRunRequest): void;
  /** Aborting stops the runs in flight: the backend rejects with INTERRUPTED. */
  stop?: AbortSignal | undefined;
}

/** Something that runs arms: the simulator, live endpoints, or (running nothing) artifacts already on disk. */
export interface Backend {
  readonly kind: "simulator" | "endpoint" | "artifacts";
  run(requests: readonly ArmRunRequest[], hooks: BackendHooks): Promise<void>;
}
