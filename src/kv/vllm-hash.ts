import { createHash } from "node:crypto";

/**
 * vLLM's prefix-cache block hashes in `--prefix-caching-hash-algo sha256_cbor` mode, so a router can compute from
 * token ids the same keys a vLLM engine publishes in its KV events (vllm/v1/core/kv_cache_utils.py):
 *
 *   NONE_HASH    = sha256(cbor(PYTHONHASHSEED))
 *   block_hash_i = sha256(cbor((block_hash_{i-1} or NONE_HASH, tuple(token_ids_i), extra_keys_i or None)))
 *   external id  = int.from_bytes(block_hash_i, "big") & (2^64 - 1)
 *
 * where cbor is `cbor2.dumps(x, canonical=True)`. vLLM's default `sha256` mode pickles its input, which cannot be
 * reproduced outside Python, so only this mode is offered.
 */

/** The Python values that occur in vLLM's hash inputs: tuples become arrays, `bytes` byte strings, `None` null. */
export type CborValue = null | boolean | number | bigint | string | Uint8Array | readonly CborValue[];

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;

// Python ints beyond 64 bits would need CBOR bignum tags; no vLLM hash input holds one, so they are refused
// rather than encoded in a way that has never been checked against cbor2.
const U64_LIMIT = 1n << 64n;
// Hash inputs nest three levels; the limit only turns a cyclic or runaway value into a clear error.
const MAX_NESTING = 64;
// With the `u` flag a well-formed surrogate pair is one code point, so this matches only lone surrogates, which
// Python's strict UTF-8 encoder (and therefore cbor2) refuses.
const LONE_SURROGATE = /\p{Cs}/u;

class ByteWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** A CBOR head: major type plus argument in the shortest form canonical CBOR (RFC 7049 §3.9) requires. */
  head(major: number, arg: bigint | number): void {
    // Token ids and lengths take this path; BigInt arithmetic per token would dominate hashing long prompts.
    if (typeof arg === "number" && arg >= 0 && arg <= 0xffffffff) {
      const width = arg < 24 ? 0 : arg <= 0xff ? 1 : arg <= 0xffff ? 2 : 4;
      this.byte((major << 5) | (width === 0 ? arg : ({ 1: 24, 2: 25, 4: 26 } as const)[width]));
      for (let i = width - 1; i >= 0; i--) this.byte((arg >>> (8 * i)) & 0xff);
      return;
    }
    const big = BigInt(arg);
    const width = big < 24n ? 0 : big <= 0xffn ? 1 : big <= 0xffffn ? 2 : big <= 0xffffffffn ? 4 : 8;
    const info = width === 0 ? Number(big) : ({ 1: 24, 2: 25, 4: 26, 8: 27 } as const)[width];
    this.byte((major << 5) | info);
    for (let i = width - 1; i >= 0; i--) this.byte(Number((big >> BigInt(8 * i)) & 0xffn));
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function describeCbor(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "number" || typeof v === "bigint") return `${typeof v} ${String(v)}`;
  if (typeof v === "object")
    return Array.isArray(v) ? "an array" : `an object (${v.constructor?.name ?? "null"})`;
  return typeof v;
}

function writeInteger(w: ByteWriter, v: bigint, path: string): void {
  if (v >= U64_LIMIT || v < -U64_LIMIT) {
    throw new RangeError(`CBOR value at ${path}: integer ${v} does not fit in 64 bits`);
  }
  if (v >= 0n) w.head(MAJOR_UNSIGNED, v);
  else w.head(MAJOR_NEGATIVE, -1n - v);
}

function writeValue(w: ByteWriter, v: unknown, path: string, depth: number): void {
  if (v === null) w.byte(0xf6);
  else if (v === false) w.byte(0xf4);
  else if (v === true) w.byte(0xf5);
  else if (typeof v === "number") {
    // Python would encode a float here; vLLM hash inputs never hold one, and a JS number cannot say which was meant.
    if (!Number.isSafeInteger(v)) {
      throw new RangeError(
        `CBOR value at ${path}: ${v} is not a safe integer (pass a bigint for larger values)`,
      );
    }
    if (v >= 0) w.head(MAJOR_UNSIGNED, v);
    else if (v >= -0x100000000) w.head(MAJOR_NEGATIVE, -1 - v);
    else writeInteger(w, BigInt(v), path);
  } else if (typeof v === "bigint") {
    writeInteger(w, v, path);
  } else if (typeof v === "string") {
    if (LONE_SURROGATE.test(v)) {
      throw new RangeError(`CBOR value at ${path}: the string holds a lone UTF-16 surrogate`);
    }
    const utf8 = Buffer.from(v, "utf8");
    w.head(MAJOR_TEXT, utf8.length);
    w.bytes(utf8);
  } else if (v instanceof Uint8Array) {
    w.head(MAJOR_BYTES, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    if (depth >= MAX_NESTING)
      throw new RangeError(`CBOR value at ${path}: nested deeper than ${MAX_NESTING}`);
    w.head(MAJOR_ARRAY, v.length);
    for (let i = 0; i < v.length; i++) writeValue(w, v[i], `${path}[${i}]`, depth + 1);
  } else {
    throw new TypeError(`CBOR value at ${path}: cannot encode ${describeCbor(v)}`);
  }
}

/** Canonical CBOR (as `cbor2.dumps(value, canonical=True)`) for the value kinds vLLM's hash inputs use. */
export function encodeCanonicalCbor(value: CborValue): Uint8Array {
  const w = new ByteWriter();
  writeValue(w, value, "$", 0);
  return w.result();
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** vLLM's root parent hash: what the first block of every sequence chains from. */
export function noneHash(pythonHashSeed: string): Uint8Array {
  if (typeof pythonHashSeed !== "string") {
    throw new TypeError(
      `pythonHashSeed must be a string (the engine's PYTHONHASHSEED), got ${typeof pythonHashSeed}`,
    );
  }
  return sha256(encodeCanonicalCbor(pythonHashSeed));
}

/** The id vLLM publishes for a block in KV events: the digest's low 64 bits, read big-endian. */
export function externalBlockId(digest: Uint8Array): bigint {
  if (digest.length === 0) throw new RangeError("a block digest must not be empty");
  let id = 0n;
  for (let i = Math.max(0, digest.length - 8); i < digest.length; i++) id = (id << 8n) | BigInt(digest[i]!);
  return id;
}

export interface VllmBlockHash {
  /** The full 32-byte SHA-256 digest, which is the next block's parent hash. */
  digest: Uint8Array;
  /** The u64 the engine reports in its KV events (with `VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1`, the default). */
  externalId: bigint;
}

export interface VllmHashOptions {
  /** The engine's PYTHONHASHSEED; without one set, vLLM's root hash is random and cannot be reproduced. */
  pythonHashSeed: string;
  /**
   * Per full block, the tuple vLLM mixes into that block's hash (LoRA name, multimodal hashes, `cache_salt` on the
   * first block, prompt-embeds hash), or null where the block has none. When given it must hold exactly one entry
   * per full block, so a caller that miscounts blocks finds out here instead of through silent cache misses.
   */
  extraKeys?: readonly (readonly CborValue[] | null)[];
  /** Digest of the block before `tokenIds[0]`, to continue a chain; the chain starts at NONE_HASH without it. */
  parentDigest?: Uint8Array;
}

/** vLLM's `sha256_cbor` hashes of every full block of `tokenIds`; a trailing partial block is not hashed. */
export function vllmBlockHashes(
  tokenIds: readonly number[],
  blockSize: number,
  opts: VllmHashOptions,
): VllmBlockHash[] {
  if (!Array.isArray(tokenIds)) throw new TypeError("tokenIds must be an array of token ids");
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
    throw new RangeError(`blockSize must be a positive integer, got ${String(blockSize)}`);
  }
  if (opts === null || typeof opts !== "object")
    throw new TypeError("vllmBlockHashes needs an options object");
  for (let i = 0; i < tokenIds.length; i++) {
    const t = tokenIds[i];
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw new RangeError(`tokenIds[${i}] must be a non-negative integer, got ${describeCbor(t)}`);
    }
  }
  const fullBlocks = Math.floor(tokenIds.length / blockSize);
  const { extraKeys, parentDigest } = opts;
  if (extraKeys !== undefined) {
    if (!Array.isArray(extraKeys))
      throw new TypeError("extraKeys must be an array with one entry per full block");
    if (extraKeys.length !== fullBlocks) {
      throw new RangeError(
        `extraKeys has ${extraKeys.length} entries but ${tokenIds.length} tokens make ${fullBlocks} full blocks of ${blockSize}`,
      );
    }
  }
  if (parentDigest !== undefined && (!(parentDigest instanceof Uint8Array) || parentDigest.length === 0)) {
    throw new TypeError("parentDigest must be a non-empty Uint8Array (a previous block's digest)");
  }

  // Computed even when a parent digest is given, so a bad seed is reported the same way either way.
  const root = noneHash(opts.pythonHashSeed);
  let parent = parentDigest ?? root;
  const out: VllmBlockHash[] = [];
  for (let b = 0; b < fullBlocks; b++) {
    const block = tokenIds.slice(b * blockSize, (b + 1) * blockSize);
    const extra = extraKeys?.[b] ?? null;
    const w = new ByteWriter();
    w.head(MAJOR_ARRAY, 3);
    writeValue(w, parent, "parent", 0);
    writeValue(w, block, `block ${b} tokens`, 0);
    writeValue(w, extra, `extraKeys[${b}]`, 0);
    const digest = sha256(w.result());
    out.push({ digest, externalId: externalBlockId(digest) });
    parent = digest;
  }
  return out;
}
