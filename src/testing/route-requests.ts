import type { BlockHasher } from "../kv/block-hash.ts";
import type { RouterEvent, StoredBlock } from "../kv/events.ts";
import { toBigInts } from "../kv/hash-seq.ts";
import type { RouteRequest } from "../router/router.ts";

/** Test block size: small, so prompts stay readable. */
export const TEST_BLOCK = 4;

/** `blocks` blocks of tokens from "document" d: requests reading the same document share those blocks. */
export function docTokens(d: number, blocks: number): number[] {
  return Array.from({ length: blocks * TEST_BLOCK }, (_, i) => d * 100_000 + i);
}

export function routeRequest(hasher: BlockHasher, requestId: string, tokens: number[]): RouteRequest {
  const locals = hasher.localHashes(tokens, TEST_BLOCK);
  return { requestId, isl: tokens.length, seqs: hasher.sequenceHashes(locals), locals };
}

/** The KV event an engine would publish after caching the request's first `blocks` blocks. */
export function storedEvent(
  req: RouteRequest,
  workerId: string,
  dpRank: number,
  blocks: number,
): RouterEvent {
  const seqs = toBigInts(req.seqs);
  const locals = toBigInts(req.locals!);
  const stored: StoredBlock[] = [];
  for (let i = 0; i < blocks; i++) stored.push({ blockHash: seqs[i]!, tokensHash: locals[i]! });
  return { workerId, dpRank, eventId: 0n, data: { type: "stored", parentHash: null, blocks: stored } };
}
