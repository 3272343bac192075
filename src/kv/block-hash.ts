import { createXXHash3, type IHasher } from "hash-wasm";
import { type HashSeq, hashCount } from "./hash-seq.ts";
import { xxh3Pair } from "./xxh3-pair.ts";
import { XXH3_WORDS_MAX_BYTES, XXH3_WORDS_MIN_BYTES, xxh3Words } from "./xxh3-words.ts";

/** Dynamo's XXH3 seed for router block hashes (`XXH3_SEED`). */
export const XXH3_SEED = 1337;

/**
 * Dynamo-compatible block hashing. Local hash of a block = XXH3-64(seed 1337) over its token ids as u32
 * little-endian (only full blocks; a trailing partial block is ignored). Sequence hash: seq[0] = local[0],
 * seq[i] = XXH3-64(le_u64(seq[i−1]) ‖ le_u64(local[i])), so equal sequence hashes mean equal prefixes.
 */
export interface BlockHasher {
  /** XXH3-64 (seed 1337) of raw bytes, written as (lo, hi) into `out` at pair index `i`. */
  hashBytesInto(bytes: Uint8Array, out: HashSeq, i: number): void;
  /** The same hash of `count` u32 words from `start` as their little-endian bytes (a block's token ids). */
  hashWordsInto(words: Uint32Array, start: number, count: number, out: HashSeq, i: number): void;
  /** Local hashes of the full blocks of a token-id sequence. */
  localHashes(tokenIds: ArrayLike<number>, blockSize: number): HashSeq;
  /** Chains local hashes into sequence hashes. */
  sequenceHashes(locals: HashSeq): HashSeq;
  /** One link of the chain: the sequence hash of a block after a parent with sequence hash (parentLo, parentHi). */
  chainInto(
    parentLo: number,
    parentHi: number,
    localLo: number,
    localHi: number,
    out: HashSeq,
    i: number,
  ): void;
}

let shared: Promise<BlockHasher> | undefined;

/** The hasher is backed by WebAssembly, which loads asynchronously once; every later call is synchronous. */
export function createBlockHasher(): Promise<BlockHasher> {
  shared ??= createXXHash3(XXH3_SEED, 0).then(makeHasher);
  return shared;
}

function makeHasher(xxh: IHasher): BlockHasher {
  let blockBuf = new Uint8Array(0);
  // Token ids are written through a u32 view: every platform Node supports is little-endian, as the hash expects.
  let blockWords = new Uint32Array(0);

  const inJs = (bytes: number) => bytes >= XXH3_WORDS_MIN_BYTES && bytes <= XXH3_WORDS_MAX_BYTES;

  const hashBytesInto = (bytes: Uint8Array, out: HashSeq, i: number): void => {
    const n = bytes.length;
    if (inJs(n) && (n & 3) === 0 && (bytes.byteOffset & 3) === 0) {
      xxh3Words(new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2), 0, n >>> 2, out, i);
      return;
    }
    xxh.init();
    xxh.update(bytes);
    const d = xxh.digest("binary");
    // XXH3's canonical digest is big-endian.
    out[2 * i] = ((d[4]! << 24) | (d[5]! << 16) | (d[6]! << 8) | d[7]!) >>> 0;
    out[2 * i + 1] = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
  };

  const hashWordsInto = (words: Uint32Array, start: number, count: number, out: HashSeq, i: number): void => {
    if (inJs(count * 4)) xxh3Words(words, start, count, out, i);
    else hashBytesInto(new Uint8Array(words.buffer, words.byteOffset + start * 4, count * 4), out, i);
  };

  const chainInto = xxh3Pair;

  return {
    hashBytesInto,
    hashWordsInto,
    chainInto,
    localHashes(tokenIds, blockSize) {
      const blocks = Math.floor(tokenIds.length / blockSize);
      const out = new Uint32Array(blocks * 2);
      if (blockWords.length !== blockSize) {
        blockWords = new Uint32Array(blockSize);
        blockBuf = new Uint8Array(blockWords.buffer);
      }
      const js = inJs(blockSize * 4);
      for (let b = 0; b < blocks; b++) {
        const base = b * blockSize;
        for (let k = 0; k < blockSize; k++) blockWords[k] = tokenIds[base + k]!;
        if (js) xxh3Words(blockWords, 0, blockSize, out, b);
        else hashBytesInto(blockBuf, out, b);
      }
      return out;
    },
    sequenceHashes(locals) {
      const n = hashCount(locals);
      const out = new Uint32Array(n * 2);
      if (n === 0) return out;
      out[0] = locals[0]!;
      out[1] = locals[1]!;
      for (let i = 1; i < n; i++) {
        chainInto(out[2 * i - 2]!, out[2 * i - 1]!, locals[2 * i]!, locals[2 * i + 1]!, out, i);
      }
      return out;
    },
  };
}
