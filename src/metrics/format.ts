/**
 * Python's `f"{v:.2f}"` (and `f"{v:,.2f}"` with `grouping`), so CSV and console figures match AIPerf's digit for
 * digit. JavaScript's `toFixed` already rounds the exact binary value, which agrees with Python everywhere except
 * on exact ties (values like 0.125), where Python rounds half to even and `toFixed` rounds half up; and `toFixed`
 * switches to exponent notation from 1e21, where Python keeps printing digits.
 */
export function formatFixed2(value: number, grouping = false): string {
  if (Number.isNaN(value)) return "nan";
  const negative = value < 0 || Object.is(value, -0);
  const a = Math.abs(value);
  if (a === Number.POSITIVE_INFINITY) return negative ? "-inf" : "inf";
  let intPart: string;
  let frac: string;
  if (a >= 1e21) {
    // Doubles this large are integers; BigInt prints every digit of the exact value.
    intPart = BigInt(a).toString();
    frac = "00";
  } else if (a < 2 ** 50 && Number.isInteger(a * 8) && !Number.isInteger(a * 4)) {
    // Exactly halfway between two cents (k/8 for odd k). Both products are exact at this magnitude.
    const down = Math.floor(a * 100);
    const cents = down % 2 === 0 ? down : down + 1;
    intPart = String(Math.floor(cents / 100));
    frac = String(cents % 100).padStart(2, "0");
  } else {
    const fixed = a.toFixed(2);
    const dot = fixed.indexOf(".");
    intPart = fixed.slice(0, dot);
    frac = fixed.slice(dot + 1);
  }
  if (grouping) intPart = intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${intPart}.${frac}`;
}
