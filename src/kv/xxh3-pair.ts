/**
 * XXH3-64 (seed 1337) of exactly 16 bytes, `le_u64(a) ‖ le_u64(b)`, in plain 32-bit integer arithmetic: the
 * sequence-hash chain link, the hottest hash in routing and event ingestion, without a WebAssembly call or a
 * BigInt. It is XXH3's 9–16-byte path (XXH3_len_9to16_64b with the default secret); tests check it against the
 * reference implementation on random inputs.
 */

/** Bytes 24..55 of XXH3's default secret, as little-endian u64 words. */
const SECRET_24 = 0x1f67b3b7a4a44072n;
const SECRET_32 = 0x78e5c0cc4ee679cbn;
const SECRET_40 = 0x2172ffcc7dd05a82n;
const SECRET_48 = 0x8e2443f7744608b8n;
const SEED = 1337n;

function halves(v: bigint): readonly [lo: number, hi: number] {
  const u = BigInt.asUintN(64, v);
  return [Number(u & 0xffffffffn), Number(u >> 32n)];
}

const FLIP1 = halves((SECRET_24 ^ SECRET_32) + SEED);
const FLIP2 = halves((SECRET_40 ^ SECRET_48) - SEED);

function bswap32(x: number): number {
  return ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/**
 * High 32 bits of the 64-bit product of two u32 values (the low half is `Math.imul(a, b) >>> 0`), from 16-bit
 * partial products: every intermediate stays below 2^32, so no division or floor is needed.
 */
function mulHigh(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const cross = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (cross >>> 16)) >>> 0;
}

/** XXH3-64(le_u64(a) ‖ le_u64(b), seed 1337), written as (lo, hi) to out[2i], out[2i+1]. */
export function xxh3Pair(
  aLo: number,
  aHi: number,
  bLo: number,
  bHi: number,
  out: Uint32Array,
  i: number,
): void {
  const xLo = (aLo ^ FLIP1[0]) >>> 0;
  const xHi = (aHi ^ FLIP1[1]) >>> 0;
  const yLo = (bLo ^ FLIP2[0]) >>> 0;
  const yHi = (bHi ^ FLIP2[1]) >>> 0;

  // 128-bit product x·y from four 32×32 partial products, folded: low 64 bits XOR high 64 bits.
  const p0Lo = Math.imul(xLo, yLo) >>> 0;
  const p0Hi = mulHigh(xLo, yLo);
  const p1Lo = Math.imul(xLo, yHi) >>> 0;
  const p1Hi = mulHigh(xLo, yHi);
  const p2Lo = Math.imul(xHi, yLo) >>> 0;
  const p2Hi = mulHigh(xHi, yLo);
  const p3Lo = Math.imul(xHi, yHi) >>> 0;
  const p3Hi = mulHigh(xHi, yHi);
  const t1 = p0Hi + p1Lo + p2Lo;
  const w1 = t1 >>> 0;
  // Carries: sums of three or four u32 values, so their quotient by 2^32 is below 4 and `| 0` floors it.
  const t2 = p1Hi + p2Hi + p3Lo + ((t1 / 4294967296) | 0);
  const w2 = t2 >>> 0;
  const w3 = (p3Hi + ((t2 / 4294967296) | 0)) >>> 0;

  // acc = 16 + swap64(x) + y + fold, mod 2^64.
  let lo = 16 + bswap32(xHi) + yLo + ((p0Lo ^ w2) >>> 0);
  let hi = bswap32(xLo) + yHi + ((w1 ^ w3) >>> 0) + ((lo / 4294967296) | 0);
  lo >>>= 0;
  hi >>>= 0;

  // Avalanche: h ^= h >> 37; h *= 0x165667919E3779F9; h ^= h >> 32.
  lo = (lo ^ (hi >>> 5)) >>> 0;
  const rLo = Math.imul(lo, 0x9e3779f9) >>> 0;
  const rHi = (mulHigh(lo, 0x9e3779f9) + Math.imul(lo, 0x16566791) + Math.imul(hi, 0x9e3779f9)) >>> 0;
  out[2 * i] = (rLo ^ rHi) >>> 0;
  out[2 * i + 1] = rHi;
}
