import type { EngineRequest, EngineWorker } from "../engine/engine-worker.ts";

/*
 * EngineWorker was written for replaying traces, where no request ever leaves early, so it has no cancel call.
 * A live server needs one: these helpers reach into a rank's queues the way EngineWorker's own completion path
 * does, and are the only code here that depends on those internals.
 */

/**
 * Takes a request out of the engine, returning its KV blocks to the rank's pool (prompt blocks stay cached for
 * reuse, as after a normal completion). Only between steps: a planned step holds references to its sequences.
 * Returns false when the request is not there (already finished).
 */
export function removeRequest(worker: EngineWorker, rank: number, req: EngineRequest): boolean {
  if (worker.isStepping) throw new Error(`cannot remove ${req.id} from ${worker.id} while a step is planned`);
  const r = worker.ranks[rank];
  if (!r) throw new RangeError(`worker ${worker.id} has no dp rank ${rank}`);
  // Waiting sequences hold no blocks: new ones have none yet and preemption released them.
  const w = r.waiting.findIndex((s) => s.req === req);
  if (w >= 0) {
    r.waiting.splice(w, 1);
    return true;
  }
  const i = r.running.findIndex((s) => s.req === req);
  if (i < 0) return false;
  const seq = r.running[i]!;
  r.pool.release(seq.shared, seq.privateBlocks);
  r.running.splice(i, 1);
  return true;
}

/** Prompt tokens a running request reused from the rank's prefix cache when it was admitted. */
export function cachedPromptTokens(worker: EngineWorker, rank: number, req: EngineRequest): number {
  return worker.ranks[rank]?.running.find((s) => s.req === req)?.cachedTokens ?? 0;
}
