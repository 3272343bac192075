import type { PerfSetting } from "../engine/perf/bounds.ts";
import type { Recipe } from "../recipe/schema.ts";

/**
 * One arm of a recipe to run at one load on one trace, leaving AIPerf-compatible artifacts (`profile_export.jsonl`,
 * `profile_export_aiperf.json`, …) in `dir`. Every backend takes these and nothing else, so that a sweep, a set of
 * replicates or a plain A/B is planned once whatever runs it.
 */
/** Where a run's artifacts are, and what to call it. */
export interface ArtifactTarget {
  /** What progress and errors call the run. */
  label: string;
  /** The artifact directory. */
  dir: string;
}

export interface ArmRunRequest extends ArtifactTarget {
  recipe: Recipe;
  arm: string;
  /** The trace to replay, already synthesized. */
  traceFile: string;
  /** Arrival-rate factor (Dynamo's `--speedup-ratio`). */
  load: number;
  /** The simulator's step-time profile bounds (nominal when absent); other backends have none. */
  perfSetting?: PerfSetting | undefined;
}

export interface BackendHooks<R extends ArtifactTarget = ArmRunRequest> {
  onProgress(label: string, done: number, total: number): void;
  /** A run's artifacts are complete in its directory. */
  onDone?(request: R): void;
  /** Aborting stops the runs in flight: the backend rejects with INTERRUPTED. */
  stop?: AbortSignal | undefined;
}

/** Something that runs arms: the simulator, live endpoints, or (running nothing) artifacts already on disk. */
export interface Backend<R extends ArtifactTarget = ArmRunRequest> {
  readonly kind: "simulator" | "endpoint" | "loopback" | "artifacts";
  run(requests: readonly R[], hooks: BackendHooks<R>): Promise<void>;
}
