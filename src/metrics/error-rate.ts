import { ServelabError } from "../errors.ts";
import type { ErrorSummaryEntry } from "./aiperf-metrics.ts";
import type { RequestRecord } from "./record.ts";

/** AIPerf-style runs tolerate some failed requests; above this share a run is a failure, not a result. */
export const DEFAULT_MAX_ERROR_RATE = 0.1;

/** One line per error type: `12 × HTTP 503 ServiceUnavailable: upstream busy`. */
export function errorLines(errors: readonly ErrorSummaryEntry[]): string[] {
  return errors.map((e) => {
    const d = e.error_details;
    return `${e.count} × ${d.code === null ? "" : `${d.code} `}${d.type}${d.message ? `: ${d.message}` : ""}`;
  });
}

/**
 * Fails a run whose requests all failed, or more than `maxErrorRate` of them, after its files are written: such a
 * run must not read as a measurement (`error[RUN_FAILED]`, exit 2), and its errors are listed by type.
 */
export function checkErrorRate(
  what: string,
  requests: number,
  errors: readonly ErrorSummaryEntry[],
  maxErrorRate: number,
): void {
  const failed = errors.reduce((a, e) => a + e.count, 0);
  if (requests === 0) throw new ServelabError("RUN_FAILED", `${what}: no request was measured`);
  const rate = failed / requests;
  if (failed < requests && rate <= maxErrorRate) return;
  throw new ServelabError(
    "RUN_FAILED",
    failed === requests
      ? `${what}: every request failed (${failed} of ${requests})`
      : `${what}: ${failed} of ${requests} requests failed (${(100 * rate).toFixed(1)} %, above --max-error-rate ${maxErrorRate})`,
    errorLines(errors),
  );
}

/** `--max-error-rate`: a fraction from 0 to 1. */
export function parseMaxErrorRate(text: string): number {
  const v = Number(text);
  if (text.trim() === "" || !(v >= 0 && v <= 1))
    throw new ServelabError("USAGE", `--max-error-rate must be a fraction from 0 to 1, got '${text}'`);
  return v;
}

/** A run's failed requests by type, as its AIPerf summary lists them (`error_summary`), else from its records. */
export function errorSummaryOf(
  summary: Record<string, unknown>,
  records: readonly RequestRecord[],
): ErrorSummaryEntry[] {
  const listed = summary.error_summary;
  if (Array.isArray(listed)) return listed as ErrorSummaryEntry[];
  const byType = new Map<string, ErrorSummaryEntry>();
  for (const r of records) {
    if (!r.error) continue;
    const key = `${r.error.code} ${r.error.type} ${r.error.message}`;
    const e = byType.get(key) ?? { error_details: { ...r.error }, count: 0 };
    e.count++;
    byType.set(key, e);
  }
  return [...byType.values()];
}
