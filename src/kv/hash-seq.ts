/**
 * A sequence of 64-bit hashes stored flat as little-endian u32 pairs `[lo0, hi0, lo1, hi1, …]`. Hot paths (index
 * lookups, matching) work on the two 32-bit halves without allocating a BigInt per hash; `toBigInts` gives the
 * exact u64 values where they leave the core (events, JSON).
 */
export type HashSeq = Uint32Array;

export function hashCount(seq: HashSeq): number {
  return seq.length >>> 1;
}

export function hashAt(seq: HashSeq, i: number): bigint {
  return (BigInt(seq[2 * i + 1]!) << 32n) | BigInt(seq[2 * i]!);
}

export function hashSeqFrom(values: readonly bigint[]): HashSeq {
  const seq = new Uint32Array(values.length * 2);
  values.forEach((v, i) => {
    const u = BigInt.asUintN(64, v);
    seq[2 * i] = Number(u & 0xffffffffn);
    seq[2 * i + 1] = Number(u >> 32n);
  });
  return seq;
}

export function toBigInts(seq: HashSeq): bigint[] {
  return Array.from({ length: hashCount(seq) }, (_, i) => hashAt(seq, i));
}

/** The first `n` hashes (a view, not a copy). */
export function hashPrefix(seq: HashSeq, n: number): HashSeq {
  return seq.subarray(0, 2 * Math.min(n, hashCount(seq)));
}
