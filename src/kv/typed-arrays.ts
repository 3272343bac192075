type NumericArray = Int32Array | Uint32Array | Float64Array;

/** A copy of `a` with room for `length` elements (the new tail is zero): how the typed-array stores grow. */
export function resized<T extends NumericArray>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a.subarray(0, Math.min(a.length, length)) as never);
  return b;
}
