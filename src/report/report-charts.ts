import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { EChartsOption } from "echarts";
import { makeOutputDir } from "../io/make-dir.ts";
import type { GoodputSlo } from "../metrics/goodput.ts";
import type { ArmArtifacts } from "./artifacts.ts";
import { svgToPng } from "./chart-png.ts";
import {
  type ArmChartData,
  cdfChartOption,
  goodputChartOption,
  renderChartSvg,
  targetChartOption,
  timeSeriesChartOption,
} from "./charts.ts";
import type { ArmReport } from "./compare.ts";

export interface RenderedChart {
  name: string;
  title: string;
  option: EChartsOption;
  svg: string;
  /** Paths relative to the report directory. */
  png: string;
  svgFile: string;
}

/** The charts' view of an arm: its per-request values, timeline, targets, and its goodput and SLO attainment. */
export function chartData(arm: ArmArtifacts, report: ArmReport | undefined): ArmChartData {
  return {
    name: arm.name,
    values: arm.values,
    sendTimesS: arm.sendTimesS,
    ttftMs: arm.ttftMs,
    timeline: arm.sim?.timeline,
    targets: arm.sim?.targets?.map((t) => ({
      target: t.target,
      requests: t.requests,
      hit_rate: t.hit_rate,
      role: t.role,
    })),
    offeredRate: offeredRateOf(arm),
    ...(report?.goodput
      ? {
          goodput: {
            value: report.goodput.goodputPerS.estimate,
            lo: report.goodput.goodputPerS.lo,
            hi: report.goodput.goodputPerS.hi,
          },
          sloAttainment: {
            value: report.goodput.attainment.estimate,
            lo: report.goodput.attainment.lo,
            hi: report.goodput.attainment.hi,
          },
        }
      : {}),
  };
}

/** Requests per second the arm's schedule sent (first to last send). */
function offeredRateOf(arm: ArmArtifacts): number | undefined {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const r of arm.records) {
    first = Math.min(first, r.startNs);
    last = Math.max(last, r.startNs);
  }
  return last > first ? (arm.records.length - 1) / ((last - first) / 1e9) : undefined;
}

/** Renders the report's charts and writes each as SVG and PNG under `charts/`. */
export async function renderReportCharts(
  outDir: string,
  arms: readonly ArmChartData[],
  extra: readonly [name: string, title: string, option: EChartsOption][] = [],
  slos: readonly GoodputSlo[] = [],
): Promise<RenderedChart[]> {
  const sloOf = (tag: string) => slos.find((s) => s.tag === tag);
  const cdf = (tag: "time_to_first_token" | "inter_token_latency" | "request_latency") =>
    cdfChartOption(arms, tag, { slo: sloOf(tag) });
  const specs: [string, string, EChartsOption][] = [
    ...extra,
    ["ttft-cdf", "TTFT distribution", cdf("time_to_first_token")],
    ["itl-cdf", "ITL distribution", cdf("inter_token_latency")],
    ["latency-cdf", "Request latency distribution", cdf("request_latency")],
    ["ttft-queue-over-time", "TTFT and queue length over trace time", timeSeriesChartOption(arms)],
  ];
  if (arms.some((a) => a.targets && a.targets.length > 0)) {
    specs.push(["targets", "Load and prefix-cache hit rate per target", targetChartOption(arms)]);
  }
  if (arms.some((a) => a.goodput))
    specs.push(["goodput", "Goodput and SLO attainment", goodputChartOption(arms)]);
  await makeOutputDir(join(outDir, "charts"));
  const charts: RenderedChart[] = [];
  for (const [name, title, option] of specs) {
    const svg = renderChartSvg(option, { idPrefix: `${name}-` });
    const png = join("charts", `${name}.png`);
    const svgFile = join("charts", `${name}.svg`);
    await writeFile(join(outDir, svgFile), svg);
    await writeFile(join(outDir, png), svgToPng(svg, { background: "#ffffff" }));
    charts.push({ name, title, option, svg, png, svgFile });
  }
  return charts;
}

let echartsScript: Promise<string> | undefined;

/** ECharts' browser build, inlined so the HTML report stays one self-contained, interactive file. */
export function echartsBrowserScript(): Promise<string> {
  echartsScript ??= readFile(createRequire(import.meta.url).resolve("echarts/dist/echarts.min.js"), "utf8");
  return echartsScript;
}
