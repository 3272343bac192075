/**
 * JSON numbers as AIPerf's encoders write a Python float: orjson for `server_metrics_export.json`, msgspec for
 * `server_metrics_export.jsonl`. Both print the shortest digits that round-trip (as JS does) but an integral value
 * keeps ".0" (`19.0`), values from 1e16 up are in exponent form (orjson `1.7e+18`, msgspec `1.7e18`), and so are
 * values below 1e-5 (`1e-6`, where JS writes `0.000001`). NaN and ±Infinity are null, as both write them.
 */

export type FloatStyle = "orjson" | "msgspec";

export function pyFloatJson(x: number, style: FloatStyle = "orjson"): string {
  if (!Number.isFinite(x)) return "null";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exp] = x.toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e < -5 || e >= 16) {
    const sign = e < 0 ? "-" : style === "orjson" ? "+" : "";
    return `${mantissa}e${sign}${Math.abs(e)}`;
  }
  // In this range JS writes fixed notation with the same shortest digits.
  const fixed = String(x);
  return fixed.includes(".") ? fixed : `${fixed}.0`;
}

/** A Python int field: the integer's digits (a JS number past 2^53 prints its nearest value, as JSON.stringify does). */
export function pyIntJson(x: number): string {
  return Number.isFinite(x) ? BigInt(Math.trunc(x)).toString() : "null";
}
