/**
 * The unit AIPerf's server-metrics exports give a metric: a 0–1 or 0–100 range named in its HELP text first, then a
 * unit the HELP text names ("in seconds", "(tokens/s)"), then the name's suffix, longest suffix first (so
 * `_tokens_total` beats `_total`). Null when none applies.
 */

const SUFFIX_UNITS: Record<string, string> = {
  _seconds: "seconds",
  _seconds_total: "seconds",
  _milliseconds: "milliseconds",
  _ms: "milliseconds",
  _ms_total: "milliseconds",
  _nanoseconds: "nanoseconds",
  _ns: "nanoseconds",
  _ns_total: "nanoseconds",
  _bytes: "bytes",
  _bytes_total: "bytes",
  _kilobytes: "kilobytes",
  _megabytes: "megabytes",
  _gigabytes: "gigabytes",
  _total: "count",
  _count: "count",
  _tokens: "tokens",
  _tokens_total: "tokens",
  _requests: "requests",
  _requests_total: "requests",
  _reqs: "requests",
  // vLLM's `vllm:request_success` (its counter family, `_total` dropped) has no underscore before the unit word.
  request_success: "requests",
  _errors: "errors",
  _errors_total: "errors",
  _error_count: "errors",
  _error_count_total: "errors",
  _blocks: "blocks",
  _blocks_total: "blocks",
  _block_count: "blocks",
  _gb_s: "gb/s",
  _ratio: "ratio",
  _percent: "percent",
  _perc: "percent",
  _celsius: "celsius",
  _joules: "joule",
  _watts: "watt",
};
const SUFFIXES = Object.keys(SUFFIX_UNITS).sort((a, b) => b.length - a.length);

const DESCRIPTION_UNITS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bin\s+seconds?\b/i, "seconds"],
  [/\bin\s+milliseconds?\b/i, "milliseconds"],
  [/\bin\s+ms\b/i, "milliseconds"],
  [/\bin\s+nanoseconds?\b/i, "nanoseconds"],
  [/\bin\s+ns\b/i, "nanoseconds"],
  [/\bin\s+bytes?\b/i, "bytes"],
  [/\bin\s+GB\/s\b/i, "gb/s"],
  [/\bin\s+MB\/s\b/i, "mb/s"],
  [/\bin\s+tokens?\/s(?:ec(?:ond)?)?\b/i, "tokens/s"],
  [/\bin\s+requests?\/s(?:ec(?:ond)?)?\b/i, "requests/s"],
  [/\(seconds?\)/i, "seconds"],
  [/\(milliseconds?\)/i, "milliseconds"],
  [/\(ms\)/i, "milliseconds"],
  [/\(nanoseconds?\)/i, "nanoseconds"],
  [/\(ns\)/i, "nanoseconds"],
  [/\(bytes?\)/i, "bytes"],
  [/\(GB\/s\)/i, "gb/s"],
  [/\(MB\/s\)/i, "mb/s"],
  [/\(tokens?\/s(?:ec(?:ond)?)?\)/i, "tokens/s"],
  [/\(requests?\/s(?:ec(?:ond)?)?\)/i, "requests/s"],
];

const RATIO_RANGES = [
  /\(0\.0\s*[-–—to]+\s*1\.0\)/i,
  /\(0\s*[-–—to]+\s*1\)/i,
  /\b0\.0\s*[-–—to]+\s*1\.0\b/i,
  /\brange\s+0(?:\.0)?\s*(?:[-–—]|to)\s*1(?:\.0)?\b/i,
  /(?:\b|\()1(?:\.0)?\s*(?:means|is|equals?|==?)\s*100\s*(?:%|percent)/i,
];
const PERCENT_RANGES = [
  /\(0\s*[-–—to]+\s*100\)/i,
  /\(0\.0\s*[-–—to]+\s*100\.0\)/i,
  /\b0\s*[-–—to]+\s*100\s*%/i,
  /\brange\s+0\s*[-–—to]+\s*100\b/i,
];

export function inferUnit(metricName: string, description: string): string | null {
  if (description) {
    if (RATIO_RANGES.some((r) => r.test(description))) return "ratio";
    if (PERCENT_RANGES.some((r) => r.test(description))) return "percent";
    for (const [re, unit] of DESCRIPTION_UNITS) if (re.test(description)) return unit;
  }
  const lower = metricName.toLowerCase();
  for (const s of SUFFIXES) if (lower.endsWith(s)) return SUFFIX_UNITS[s]!;
  return null;
}

/** An endpoint as AIPerf's CSV names it: host and port, then the path without a trailing `/metrics`. */
export function endpointDisplay(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname.endsWith("/metrics") ? u.pathname.slice(0, -"/metrics".length) : u.pathname;
    return u.host + (path === "/" ? "" : path);
  } catch {
    return url;
  }
}
