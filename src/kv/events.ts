/**
 * The router's internal KV-cache event model (Dynamo's `RouterEvent` / `KvCacheEvent`). Engines describe what they
 * cache in their own hashes (`blockHash`, opaque ids the index only uses to link parents and apply removals);
 * `tokensHash` is the router's content hash of the block's tokens, which is what matching runs on.
 */

/** An unsigned 64-bit hash. Python engines may report i64: codecs reinterpret those bits as u64. */
export type BlockHash = bigint;

export interface StoredBlock {
  /** The engine's id for the block (its sequence hash in the engine's own scheme). */
  blockHash: BlockHash;
  /** The router's local hash of the block's tokens (XXH3-64, seed 1337, over u32 LE token ids). */
  tokensHash: BlockHash;
}

export type KvCacheEventData =
  | { type: "stored"; parentHash: BlockHash | null; blocks: StoredBlock[] }
  | { type: "removed"; blockHashes: BlockHash[] }
  | { type: "cleared" };

/** One cache event from one attention-DP rank of one worker. */
export interface RouterEvent {
  /** Worker id: Dynamo's u64 lease id as a decimal string, or any name for other engines. */
  workerId: string;
  dpRank: number;
  /** Monotonically increasing per worker (and rank). */
  eventId: bigint;
  data: KvCacheEventData;
}

/** Mask applied to every hash a codec reads, so negative i64 values become their u64 bit pattern. */
export const U64_MASK = (1n << 64n) - 1n;

export function toU64(v: bigint | number): BlockHash {
  return BigInt.asUintN(64, typeof v === "number" ? BigInt(v) : v);
}
