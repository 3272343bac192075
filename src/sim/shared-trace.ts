import { BlockIds, type SharedBlockIds } from "../engine/block-ids.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import type { Recipe } from "../recipe/schema.ts";
import type { TraceRow } from "../trace/types.ts";
import { type PreparedTrace, prepareTrace } from "./cluster.ts";
import { armKvBlockSize } from "./run-sim.ts";

/**
 * A prepared trace in memory several threads can read: the arms of an A/B replay one trace, so it is hashed and
 * its blocks numbered once instead of once per arm. Rows travel by copy; hashes, block ids and the id table are
 * shared (SharedArrayBuffer), one flat array each, row `i` at `offsets[i]…offsets[i + 1]` (in blocks).
 */
export interface SharedTrace {
  rows: readonly TraceRow[];
  kvBlockSize: number;
  offsets: Int32Array;
  /** Two words (lo, hi) per block. */
  seqs: Uint32Array;
  locals: Uint32Array;
  blockIds: Int32Array;
  ids: SharedBlockIds;
}

const sharedWords = <T extends Uint32Array | Int32Array>(make: (b: SharedArrayBuffer) => T, words: number) =>
  make(new SharedArrayBuffer(words * 4));

export function shareTrace(p: PreparedTrace): SharedTrace {
  const n = p.rows.length;
  const offsets = sharedWords((b) => new Int32Array(b), n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + p.blockIds[i]!.length;
  const blocks = offsets[n]!;
  const seqs = sharedWords((b) => new Uint32Array(b), 2 * blocks);
  const locals = sharedWords((b) => new Uint32Array(b), 2 * blocks);
  const blockIds = sharedWords((b) => new Int32Array(b), blocks);
  for (let i = 0; i < n; i++) {
    const at = offsets[i]!;
    seqs.set(p.seqs[i]!, 2 * at);
    locals.set(p.locals[i]!, 2 * at);
    blockIds.set(p.blockIds[i]!, at);
  }
  return { rows: p.rows, kvBlockSize: p.kvBlockSize, offsets, seqs, locals, blockIds, ids: p.ids.share() };
}

/** The prepared trace over shared memory (rows' hashes are views into it; block ids are copied per row). */
export function unshareTrace(s: SharedTrace): PreparedTrace {
  const n = s.rows.length;
  if (s.offsets.length !== n + 1 || s.seqs.length !== 2 * s.offsets[n]! || s.locals.length !== s.seqs.length)
    throw new RangeError("shared trace: offsets and hashes do not match its rows");
  const seqs: Uint32Array[] = [];
  const locals: Uint32Array[] = [];
  const blockIds: number[][] = [];
  for (let i = 0; i < n; i++) {
    const from = s.offsets[i]!;
    const to = s.offsets[i + 1]!;
    seqs.push(s.seqs.subarray(2 * from, 2 * to));
    locals.push(s.locals.subarray(2 * from, 2 * to));
    blockIds.push(Array.from(s.blockIds.subarray(from, to)));
  }
  return {
    rows: s.rows,
    kvBlockSize: s.kvBlockSize,
    seqs,
    locals,
    blockIds,
    ids: BlockIds.fromShared(s.ids),
  };
}

/**
 * A trace's rows prepared once for the given arms of a recipe, or undefined when their KV block sizes differ (each
 * arm then prepares its own).
 */
export async function prepareSharedTrace(
  recipe: Recipe,
  arms: readonly string[],
  rows: readonly TraceRow[],
): Promise<SharedTrace | undefined> {
  const sizes = new Set(arms.map((name) => armKvBlockSize(recipe, name)));
  if (sizes.size !== 1) return undefined;
  const prepared = prepareTrace(
    rows,
    await createBlockHasher(),
    [...sizes][0]!,
    recipe.benchmark.prompt_block_size,
  );
  return shareTrace(prepared);
}
