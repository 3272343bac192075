import type { BlockHasher } from "./block-hash.ts";
import type { HashSeq } from "./hash-seq.ts";
import { xxh3Pair } from "./xxh3-pair.ts";

/**
 * Router block hashes for a trace request that has only `hash_ids` (no token ids). The prompt is read as a stream
 * of virtual tokens, token k being (hash_ids[⌊k/traceBlockSize⌋], k mod traceBlockSize); a router block's local
 * hash is XXH3 over the runs of virtual tokens it covers, encoded as (hash id u64, first offset u32, length u32)
 * per run. Two requests therefore share router blocks exactly where they share trace blocks, for any KV block
 * size, including sizes that do not divide the trace block size. Only full router blocks within `inputLength`
 * are hashed, as the router does for real prompts.
 */
export function traceLocalHashes(
  hasher: BlockHasher,
  hashIds: readonly number[],
  inputLength: number,
  kvBlockSize: number,
  traceBlockSize = 512,
): HashSeq {
  const tokens = Math.min(inputLength, hashIds.length * traceBlockSize);
  const blocks = Math.floor(tokens / kvBlockSize);
  const out = new Uint32Array(blocks * 2);
  // At most ⌈kvBlockSize / traceBlockSize⌉ + 1 runs per block, 16 bytes each.
  const maxRuns = Math.ceil(kvBlockSize / traceBlockSize) + 1;
  const buf = new Uint8Array(maxRuns * 16);
  const view = new DataView(buf.buffer);
  for (let b = 0; b < blocks; b++) {
    let k = b * kvBlockSize;
    const end = k + kvBlockSize;
    let bytes = 0;
    while (k < end) {
      const traceBlock = Math.floor(k / traceBlockSize);
      const offset = k - traceBlock * traceBlockSize;
      const len = Math.min(end - k, traceBlockSize - offset);
      const id = hashIds[traceBlock]!;
      view.setUint32(bytes, id >>> 0, true);
      view.setUint32(bytes + 4, Math.floor(id / 2 ** 32), true);
      view.setUint32(bytes + 8, offset, true);
      view.setUint32(bytes + 12, len, true);
      bytes += 16;
      k += len;
    }
    // One run is 16 bytes: the pure-JS XXH3 of a 16-byte input gives the same hash without a WebAssembly call.
    if (bytes === 16)
      xxh3Pair(
        view.getUint32(0, true),
        view.getUint32(4, true),
        view.getUint32(8, true),
        view.getUint32(12, true),
        out,
        b,
      );
    else hasher.hashBytesInto(buf.subarray(0, bytes), out, b);
  }
  return out;
}

/** Sequence hashes of a trace request's full router blocks (what the router matches and tracks). */
export function traceSequenceHashes(
  hasher: BlockHasher,
  hashIds: readonly number[],
  inputLength: number,
  kvBlockSize: number,
  traceBlockSize = 512,
): HashSeq {
  return hasher.sequenceHashes(traceLocalHashes(hasher, hashIds, inputLength, kvBlockSize, traceBlockSize));
}
