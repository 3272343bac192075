/**
 * XXH3-64 (seed 1337) of 17 to 128 bytes given as u32 little-endian words — a block of 5 to 32 token ids — in
 * plain integer and double arithmetic, like xxh3-pair.ts: XXH3's short-input path (XXH3_len_17to128_64b with the
 * default secret) is a handful of multiplications, a third of what the WebAssembly hasher's init/update/digest
 * calls cost for a 16-token block. Past 128 bytes WebAssembly's native 64-bit multiplications catch up, so the
 * caller hashes longer blocks there. Tests check it against the reference implementation.
 */

/** Bytes 0..127 of XXH3's default secret (kSecret). */
const SECRET_HEX =
  "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671fcb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c" +
  "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364";
const SEED = 1337n;
const M64 = (1n << 64n) - 1n;

export const XXH3_WORDS_MIN_BYTES = 17;
export const XXH3_WORDS_MAX_BYTES = 128;

function secret64(offset: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--)
    v = (v << 8n) | BigInt(`0x${SECRET_HEX.slice(2 * (offset + i), 2 * (offset + i) + 2)}`);
  return v;
}

/**
 * mix16B's keys for secret offset 16·k, seed folded in: `(secret[16k..+8] + seed, secret[16k+8..+16] − seed)` as
 * (lo, hi, lo, hi) words at 4k.
 */
const KEYS = new Uint32Array(32);
for (let k = 0; k < 8; k++) {
  const a = (secret64(16 * k) + SEED) & M64;
  const b = (secret64(16 * k + 8) - SEED) & M64;
  KEYS[4 * k] = Number(a & 0xffffffffn);
  KEYS[4 * k + 1] = Number(a >> 32n);
  KEYS[4 * k + 2] = Number(b & 0xffffffffn);
  KEYS[4 * k + 3] = Number(b >> 32n);
}

/**
 * High 32 bits of the 64-bit product of two u32 values. Both partial products of `a` by `b`'s 16-bit halves stay
 * below 2^48, so the doubles are exact, and cheaper than xxh3-pair.ts's four 16×16-bit products.
 */
function mulHigh(a: number, b: number): number {
  return Math.floor((a * (b >>> 16) + Math.floor((a * (b & 0xffff)) / 65536)) / 65536);
}

/**
 * The 64-bit accumulator's (lo, hi) halves, in a typed array: adding a mix to it then returns nothing and, unlike a
 * module variable holding a number past 2^31, allocates nothing.
 */
const acc = new Uint32Array(2);

/** acc += mix16B(words[p..p+4], key k): the 128-bit product of the keyed halves, folded to 64 bits. */
function mix(w: Uint32Array, p: number, k: number): void {
  const xLo = (w[p]! ^ KEYS[4 * k]!) >>> 0;
  const xHi = (w[p + 1]! ^ KEYS[4 * k + 1]!) >>> 0;
  const yLo = (w[p + 2]! ^ KEYS[4 * k + 2]!) >>> 0;
  const yHi = (w[p + 3]! ^ KEYS[4 * k + 3]!) >>> 0;
  // mulHigh written out (the calls are not always inlined, and each would box its u32 arguments).
  const yLoL = yLo & 0xffff;
  const yLoH = yLo >>> 16;
  const yHiL = yHi & 0xffff;
  const yHiH = yHi >>> 16;
  const h00 = Math.floor((xLo * yLoH + Math.floor((xLo * yLoL) / 65536)) / 65536);
  const h01 = Math.floor((xLo * yHiH + Math.floor((xLo * yHiL) / 65536)) / 65536);
  const h10 = Math.floor((xHi * yLoH + Math.floor((xHi * yLoL) / 65536)) / 65536);
  const h11 = Math.floor((xHi * yHiH + Math.floor((xHi * yHiL) / 65536)) / 65536);
  // The product's words are Math.imul(xLo, yLo), t1, t2 and w3 (mod 2^32; `| 0` floors the carries, below 4).
  const t1 = h00 + (Math.imul(xLo, yHi) >>> 0) + (Math.imul(xHi, yLo) >>> 0);
  const t2 = h01 + h10 + (Math.imul(xHi, yHi) >>> 0) + ((t1 / 4294967296) | 0);
  const w3 = h11 + ((t2 / 4294967296) | 0);
  // Typed-array stores wrap mod 2^32, and `^` reads its operands mod 2^32.
  const lo = acc[0]! + ((Math.imul(xLo, yLo) ^ t2) >>> 0);
  acc[1] = acc[1]! + ((t1 ^ w3) >>> 0) + ((lo / 4294967296) | 0);
  acc[0] = lo;
}

/**
 * XXH3-64 (seed 1337) of the `count` words at `start` (17 ≤ 4·count ≤ 128 bytes), written as (lo, hi) to
 * out[2i], out[2i+1].
 */
export function xxh3Words(
  words: Uint32Array,
  start: number,
  count: number,
  out: Uint32Array,
  i: number,
): void {
  const len = count * 4;
  if (len < XXH3_WORDS_MIN_BYTES || len > XXH3_WORDS_MAX_BYTES)
    throw new RangeError(`xxh3Words hashes 17 to 128 bytes, got ${len}`);
  // acc = len · PRIME64_1 (0x9E3779B185EBCA87); len < 2^8, so both partial products are exact doubles.
  const pLo = len * 0x85ebca87;
  acc[0] = pLo;
  acc[1] = len * 0x9e3779b1 + Math.floor(pLo / 4294967296);
  // Pair r mixes bytes [16r, 16r+16) with key 2r and the r-th 16 bytes from the end with key 2r+1.
  const pairs = ((len - 1) >>> 5) + 1;
  const end = start + count;
  for (let r = 0; r < pairs; r++) {
    mix(words, start + 4 * r, 2 * r);
    mix(words, end - 4 - 4 * r, 2 * r + 1);
  }
  // XXH3_avalanche: h ^= h >> 37; h *= 0x165667919E3779F9; h ^= h >> 32.
  const hi = acc[1]!;
  const lo = (acc[0]! ^ (hi >>> 5)) >>> 0;
  const rHi = (mulHigh(lo, 0x9e3779f9) + Math.imul(lo, 0x16566791) + Math.imul(hi, 0x9e3779f9)) >>> 0;
  out[2 * i] = (Math.imul(lo, 0x9e3779f9) ^ rHi) >>> 0;
  out[2 * i + 1] = rHi;
}
