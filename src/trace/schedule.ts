import { ServelabError } from "../errors.ts";
import { createRng } from "../random.ts";
import type { TraceRow } from "./types.ts";

export interface FixedScheduleOptions {
  /** Zero at the first kept timestamp (AIPerf `--fixed-schedule-auto-offset`). */
  autoOffset?: boolean;
  /** Keep rows from this timestamp (inclusive); zero is here unless auto offset. */
  startOffsetMs?: number;
  /** Keep rows up to this timestamp (inclusive). */
  endOffsetMs?: number;
}

export interface ScheduledRow {
  row: TraceRow;
  /** Index of the row in the trace. */
  position: number;
  /** Send time, ms after the schedule's zero. */
  atMs: number;
}

/** Fixed-schedule window: rows kept and their send times (AIPerf `--fixed-schedule` semantics). */
export function scheduleRows(rows: readonly TraceRow[], opts: FixedScheduleOptions): ScheduledRow[] {
  if (opts.autoOffset && opts.startOffsetMs !== undefined) {
    throw new ServelabError("USAGE", "auto offset and a start offset cannot be used together");
  }
  const kept: { row: TraceRow; position: number }[] = [];
  rows.forEach((row, position) => {
    const ts = row.timestamp;
    if (ts !== undefined && opts.startOffsetMs !== undefined && ts < opts.startOffsetMs) return;
    if (ts !== undefined && opts.endOffsetMs !== undefined && ts > opts.endOffsetMs) return;
    kept.push({ row, position });
  });
  let zero = opts.startOffsetMs ?? 0;
  if (opts.autoOffset) {
    zero = kept.reduce(
      (m, k) => Math.min(m, k.row.timestamp ?? Number.POSITIVE_INFINITY),
      Number.POSITIVE_INFINITY,
    );
    if (!Number.isFinite(zero)) zero = 0;
  }
  return kept.map(({ row, position }) => ({
    row,
    position,
    atMs: Math.max(0, (row.timestamp ?? zero) - zero),
  }));
}

/**
 * Send offsets (ms) for `count` requests at `rate` per second: evenly spaced (`constant`) or with exponential gaps
 * from the seeded generator (`poisson`), the first at 0.
 */
export function rateSchedule(
  count: number,
  rate: number,
  kind: "constant" | "poisson",
  seed: number,
): number[] {
  if (!(rate > 0)) throw new ServelabError("USAGE", `request rate must be positive, got ${rate}`);
  const rng = createRng(seed, "request-rate");
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    times.push(t);
    t += kind === "constant" ? 1000 / rate : (-Math.log(1 - rng.next()) * 1000) / rate;
  }
  return times;
}

/**
 * The trace at `load` times its arrival rate, as Dynamo's `--speedup-ratio` makes it: every timestamp divided by
 * `load` (rows without one are left as they are). The same rows when `load` is 1.
 */
export function scaleArrivals(rows: readonly TraceRow[], load: number): readonly TraceRow[] {
  if (!(load > 0) || !Number.isFinite(load))
    throw new ServelabError("USAGE", `a load factor must be positive and finite, got ${load}`);
  if (load === 1) return rows;
  return rows.map((r) => (r.timestamp === undefined ? r : { ...r, timestamp: r.timestamp / load }));
}
