import type { EChartsOption } from "echarts";
import type { GoodputSlo } from "../metrics/goodput.ts";
import {
  acrossTraces,
  type CapacityCurve,
  type CapacityRun,
  KNEE_ATTAINMENT,
  type KneePoint,
  kneeText,
} from "./capacity.ts";
import { capacityChartOption, latencyCurveOption, paretoChartOption } from "./capacity-charts.ts";
import { formatNumber } from "./compare.ts";

interface Table {
  title: string;
  note: string;
  head: string[];
  rows: string[][];
}

const num = (v: number | null) => (v === null ? "–" : formatNumber(v));

/** The capacity curve of every arm, their knees and, with several traces, the A/B on each trace. */
export function capacityTables(
  curves: readonly CapacityCurve[],
  ctx: { runs: readonly CapacityRun[]; loads: readonly number[]; seeds: readonly number[] | null },
): Table[] {
  const traces = ctx.seeds?.length ?? 1;
  const across =
    traces > 1
      ? `means over ${traces} traces (seeds ${ctx.seeds!.join(", ")}); SLO attainment with a 95 % t interval over the traces`
      : "one trace; SLO attainment with its 95 % Wilson interval";
  const rows = curves.flatMap((c) =>
    c.points.map((p) => [
      c.arm,
      `×${p.load}`,
      formatNumber(p.offeredRate),
      num(p.goodput),
      num(p.goodputPerGpu),
      p.attainment
        ? `${formatNumber(100 * p.attainment.estimate)} % [${formatNumber(100 * p.attainment.lo)}, ${formatNumber(100 * p.attainment.hi)}]`
        : "–",
      `${num(p.ttftP50)} / ${num(p.ttftP99)}`,
      `${num(p.itlP50)} / ${num(p.itlP99)}`,
      num(p.outputTokensPerSPerGpu),
      p.overloaded === 0 ? "no" : traces > 1 ? `yes (${p.overloaded} of ${p.traces})` : "yes",
    ]),
  );
  const kneeRange = (lo: KneePoint, hi: KneePoint, low: number) =>
    `[${kneeText(lo, low, formatNumber)}, ${kneeText(hi, low, formatNumber)}]`;
  const knees = curves.map((c) => {
    const low = c.points[0]?.offeredRate ?? 0;
    return [
      c.arm,
      String(c.gpus > 0 ? c.gpus : "–"),
      c.knee ? kneeText(c.knee, low, formatNumber) : "– (no SLOs)",
      c.knee ? kneeRange(c.knee.lo, c.knee.hi, low) : "–",
      c.knee && c.knee.rate !== null && c.gpus > 0 ? formatNumber(c.knee.rate / c.gpus) : "–",
    ];
  });
  const tables: Table[] = [
    {
      title: "Headroom: the knee of each arm",
      note: `The knee is the highest offered rate at which SLO attainment stays ≥ ${KNEE_ATTAINMENT * 100} %, interpolated linearly between the swept loads; its interval is the knee of the attainment interval's lower and upper curves. "≥ r" means the arm never fell below the threshold up to the highest load swept, "< r" that it was below it already at the lowest.`,
      head: ["arm", "GPUs", "knee", "interval", "knee per GPU (req/s)"],
      rows: knees,
    },
    {
      title: "Capacity curves",
      note: `Every arm at every load factor (the trace's timestamps divided by it); ${across}.`,
      head: [
        "arm",
        "load",
        "offered (req/s)",
        "goodput (req/s)",
        "goodput per GPU",
        "SLO attainment [95 % CI]",
        "TTFT p50 / p99 (ms)",
        "ITL p50 / p99 (ms)",
        "output tok/s per GPU",
        "overloaded",
      ],
      rows,
    },
  ];
  if (traces > 1 && curves.length >= 2) tables.push(replicateTable(curves, ctx));
  return tables;
}

/** Goodput of the first two arms on each trace at each load, and B − A over the traces with a t interval. */
function replicateTable(
  curves: readonly CapacityCurve[],
  ctx: { runs: readonly CapacityRun[]; loads: readonly number[]; seeds: readonly number[] | null },
): Table {
  const [a, b] = [curves[0]!.arm, curves[1]!.arm];
  const rows = ctx.loads.map((load) => {
    const deltas: number[] = [];
    const perSeed = ctx.seeds!.map((seed) => {
      const ga =
        ctx.runs.find((r) => r.arm === a && r.load === load && r.traceSeed === seed)?.goodput ?? null;
      const gb =
        ctx.runs.find((r) => r.arm === b && r.load === load && r.traceSeed === seed)?.goodput ?? null;
      if (ga !== null && gb !== null) deltas.push(gb - ga);
      return `${num(ga)} → ${num(gb)}`;
    });
    const d = deltas.length > 0 ? acrossTraces(deltas) : null;
    return [
      `×${load}`,
      ...perSeed,
      d ? `${formatNumber(d.estimate)} [${formatNumber(d.lo)}, ${formatNumber(d.hi)}]` : "–",
    ];
  });
  return {
    title: "Replicates: the A/B on each trace",
    note: `Goodput (req/s) of ${a} → ${b} on each synthesized trace; the last column is the mean difference over the traces with a 95 % t interval, which covers trace-to-trace variation.`,
    head: ["load", ...ctx.seeds!.map((s) => `seed ${s}`), `${b} − ${a} [95 % CI]`],
    rows,
  };
}

/** The sweep's charts: goodput and attainment, latencies, and the per-GPU/per-user trade-off. */
export function capacityChartSpecs(
  curves: readonly CapacityCurve[],
  slos: readonly GoodputSlo[],
): [string, string, EChartsOption][] {
  const subtitle =
    slos.length > 0
      ? `SLOs: ${slos.map((s) => `${s.tag} ${s.largerIsBetter ? "≥" : "≤"} ${s.threshold}`).join(", ")}`
      : "no SLOs set";
  return [
    ["capacity", "Goodput and SLO attainment vs offered load", capacityChartOption(curves, subtitle)],
    ["latency-vs-load", "TTFT and ITL vs offered load", latencyCurveOption(curves)],
    ["pareto", "Throughput per GPU vs per user", paretoChartOption(curves)],
  ];
}
