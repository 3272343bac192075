import type { PerfBound } from "../engine/perf/bounds.ts";

/** One arm's AIPerf summary under one step-time setting (read from its `profile_export_aiperf.json`). */
export interface SettingArm {
  name: string;
  summary: Record<string, unknown>;
}

/** The arms of the A/B run under one step-time setting: every parameter at `bound`, or one moved to `vary`. */
export interface SettingRun {
  label: string;
  bound: PerfBound;
  vary?: { parameter: string; bound: PerfBound };
  arms: SettingArm[];
}

/** The decision figures of one arm under one setting. */
export interface ArmFigures {
  goodput: number;
  sloAttainment: number;
  throughput: number;
  ttftAvg: number;
  ttftP99: number;
  itlAvg: number;
  latencyAvg: number;
}

/** The A/B under one setting: each arm's figures and B against A. */
export interface SettingVerdict {
  label: string;
  baseline: ArmFigures;
  candidate: ArmFigures;
  goodputDelta: number;
  ttftRatio: number;
  itlRatio: number;
}

const stat = (s: Record<string, unknown>, tag: string, key = "avg"): number => {
  const v = (s[tag] as Record<string, unknown> | undefined)?.[key];
  return typeof v === "number" ? v : Number.NaN;
};

export function armFigures(summary: Record<string, unknown>): ArmFigures {
  const total = stat(summary, "request_count");
  return {
    goodput: stat(summary, "goodput"),
    sloAttainment: stat(summary, "good_request_count") / total,
    throughput: stat(summary, "request_throughput"),
    ttftAvg: stat(summary, "time_to_first_token"),
    ttftP99: stat(summary, "time_to_first_token", "p99"),
    itlAvg: stat(summary, "inter_token_latency"),
    latencyAvg: stat(summary, "request_latency"),
  };
}

/** B against A (the candidate arm against the baseline, by name) under each setting. */
export function settingVerdicts(
  runs: readonly SettingRun[],
  baseline: string,
  candidate: string,
): SettingVerdict[] {
  return runs.map((r) => {
    const of = (name: string) => {
      const arm = r.arms.find((a) => a.name === name);
      if (!arm) throw new RangeError(`setting ${r.label} has no arm ${name}`);
      return armFigures(arm.summary);
    };
    const a = of(baseline);
    const b = of(candidate);
    return {
      label: r.label,
      baseline: a,
      candidate: b,
      goodputDelta: b.goodput - a.goodput,
      ttftRatio: b.ttftAvg / a.ttftAvg,
      itlRatio: b.itlAvg / a.itlAvg,
    };
  });
}

const f = (v: number, digits = 2) =>
  Number.isFinite(v)
    ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
const pct = (v: number) => (Number.isFinite(v) ? `${f(100 * v, 1)} %` : "–");

export const BOUNDS_HEAD = [
  "step-time bounds",
  "goodput A → B (req/s)",
  "SLO attainment A → B",
  "throughput A / B (req/s)",
  "TTFT avg A → B (ms)",
  "ITL avg A → B (ms)",
  "B/A TTFT",
  "B/A ITL",
];

export function boundsRows(verdicts: readonly SettingVerdict[]): string[][] {
  return verdicts.map((v) => [
    v.label,
    `${f(v.baseline.goodput)} → ${f(v.candidate.goodput)} (${v.goodputDelta >= 0 ? "+" : ""}${f(v.goodputDelta)})`,
    `${pct(v.baseline.sloAttainment)} → ${pct(v.candidate.sloAttainment)}`,
    `${f(v.baseline.throughput)} / ${f(v.candidate.throughput)}`,
    `${f(v.baseline.ttftAvg, 0)} → ${f(v.candidate.ttftAvg, 0)}`,
    `${f(v.baseline.itlAvg, 1)} → ${f(v.candidate.itlAvg, 1)}`,
    `${f(v.ttftRatio, 3)}×`,
    `${f(v.itlRatio, 3)}×`,
  ]);
}

export const SENSITIVITY_HEAD = [
  "parameter (others nominal)",
  "optimistic end: goodput Δ / B/A TTFT",
  "pessimistic end: goodput Δ / B/A TTFT",
  "goodput Δ swing (req/s)",
];

/**
 * One row per parameter moved alone to its ends, the nominal run as reference, sorted by how far the goodput
 * difference moves (the decision metric), then the TTFT ratio.
 */
export function sensitivityRows(
  nominal: SettingVerdict,
  varied: readonly SettingRun[],
  verdicts: readonly SettingVerdict[],
): string[][] {
  const byParam = new Map<string, Partial<Record<PerfBound, SettingVerdict>>>();
  varied.forEach((r, i) => {
    if (!r.vary) return;
    const row = byParam.get(r.vary.parameter) ?? {};
    row[r.vary.bound] = verdicts[i]!;
    byParam.set(r.vary.parameter, row);
  });
  const cell = (v: SettingVerdict | undefined) =>
    v ? `${v.goodputDelta >= 0 ? "+" : ""}${f(v.goodputDelta)} / ${f(v.ttftRatio, 3)}×` : "= nominal";
  const rows = [...byParam].map(([param, ends]) => {
    const deltas = [nominal, ends.optimistic, ends.pessimistic]
      .filter((v) => v !== undefined)
      .map((v) => v!.goodputDelta);
    const ratios = [nominal, ends.optimistic, ends.pessimistic]
      .filter((v) => v !== undefined)
      .map((v) => v!.ttftRatio);
    const swing = Math.max(...deltas) - Math.min(...deltas);
    const ratioSwing = Math.max(...ratios) - Math.min(...ratios);
    return { swing, ratioSwing, cells: [param, cell(ends.optimistic), cell(ends.pessimistic), f(swing, 3)] };
  });
  rows.sort((a, b) => b.swing - a.swing || b.ratioSwing - a.ratioSwing);
  return rows.map((r) => r.cells);
}
