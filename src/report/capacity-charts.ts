import type { EChartsOption, LineSeriesOption } from "echarts";
import { type CapacityCurve, KNEE_ATTAINMENT } from "./capacity.ts";
import { ARM_COLORS, armColor, GOODPUT_ATTAINMENT_AXES, legendLayout, sideBySideGrids } from "./charts.ts";

const round = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? null : Number(v.toPrecision(6));

function line(
  curve: CapacityCurve,
  index: number,
  pick: (p: CapacityCurve["points"][number]) => number | null,
  o: { axis: number; dashed?: boolean; name?: string; scale?: number },
): LineSeriesOption {
  return {
    type: "line",
    name: o.name ?? curve.arm,
    xAxisIndex: o.axis,
    yAxisIndex: o.axis,
    color: armColor(index),
    symbol: "circle",
    symbolSize: 6,
    lineStyle: { color: armColor(index), width: 2, type: o.dashed ? "dashed" : "solid" },
    data: curve.points.map((p) => {
      const v = pick(p);
      return [round(p.offeredRate), v === null ? null : round(v * (o.scale ?? 1))];
    }),
  };
}

const rateAxis = (gridIndex: number) => ({
  type: "value" as const,
  gridIndex,
  scale: true,
  name: "offered load (req/s)",
  nameLocation: "middle" as const,
  nameGap: 28,
});

/** Goodput and SLO attainment against the offered request rate, one line per arm, the knee's threshold marked. */
export function capacityChartOption(curves: readonly CapacityCurve[], subtitle: string): EChartsOption {
  const legend = legendLayout(curves.map((c) => c.arm));
  return {
    color: [...ARM_COLORS],
    title: { text: "Goodput and SLO attainment vs offered load", subtext: subtitle, left: "center" },
    tooltip: { trigger: "axis" },
    legend: legend.legend,
    grid: sideBySideGrids(70 + legend.extra),
    xAxis: [rateAxis(0), rateAxis(1)],
    yAxis: GOODPUT_ATTAINMENT_AXES,
    series: [
      ...curves.map((c, i) => line(c, i, (p) => p.goodput, { axis: 0 })),
      ...curves.map((c, i) => ({
        ...line(c, i, (p) => p.attainment?.estimate ?? null, { axis: 1, scale: 100 }),
        ...(i === 0
          ? {
              markLine: {
                symbol: "none",
                silent: true,
                lineStyle: { color: "#999", type: "dotted" as const },
                label: {
                  formatter: `knee threshold ${KNEE_ATTAINMENT * 100} %`,
                  position: "insideEndTop" as const,
                },
                data: [{ yAxis: KNEE_ATTAINMENT * 100 }],
              },
            }
          : {}),
      })),
    ],
  };
}

/** TTFT and ITL p50 (solid) and p99 (dashed) against the offered request rate. */
export function latencyCurveOption(curves: readonly CapacityCurve[]): EChartsOption {
  const logAxis = (gridIndex: number, name: string) => ({
    type: "log" as const,
    gridIndex,
    name,
    nameLocation: "middle" as const,
    nameGap: 50,
  });
  const legend = legendLayout(curves.map((c) => c.arm));
  return {
    color: [...ARM_COLORS],
    title: { text: "TTFT and ITL vs offered load", subtext: "p50 solid, p99 dashed", left: "center" },
    tooltip: { trigger: "axis" },
    legend: legend.legend,
    grid: sideBySideGrids(70 + legend.extra, 80),
    xAxis: [rateAxis(0), rateAxis(1)],
    yAxis: [logAxis(0, "TTFT (ms)"), logAxis(1, "ITL (ms)")],
    series: curves.flatMap((c, i) => [
      line(c, i, (p) => p.ttftP50, { axis: 0 }),
      line(c, i, (p) => p.ttftP99, { axis: 0, dashed: true }),
      line(c, i, (p) => p.itlP50, { axis: 1 }),
      line(c, i, (p) => p.itlP99, { axis: 1, dashed: true }),
    ]),
  };
}

/**
 * The throughput/interactivity trade-off across the sweep: output tokens/s per GPU against output tokens/s per user
 * (1000 / ITL avg), one line per arm through its load points. Up and to the right is better.
 */
export function paretoChartOption(curves: readonly CapacityCurve[]): EChartsOption {
  const legend = legendLayout(curves.map((c) => c.arm));
  return {
    color: [...ARM_COLORS],
    title: {
      text: "Throughput per GPU vs per user",
      subtext: "one point per offered load; up and to the right is better",
      left: "center",
    },
    tooltip: {
      trigger: "item",
      formatter: "{a}: load ×{@[2]}<br/>{@[0]} tokens/s per user, {@[1]} tokens/s per GPU",
    },
    legend: legend.legend,
    grid: { left: 80, right: 40, top: 90, bottom: 70 + legend.extra },
    xAxis: {
      type: "value",
      scale: true,
      name: "output tokens/s per user",
      nameLocation: "middle",
      nameGap: 28,
    },
    yAxis: { type: "value", min: 0, name: "output tokens/s per GPU", nameLocation: "middle", nameGap: 55 },
    series: curves.map(
      (c, i): LineSeriesOption => ({
        type: "line",
        name: c.arm,
        color: armColor(i),
        symbol: "circle",
        symbolSize: 7,
        lineStyle: { color: armColor(i), width: 2 },
        // String templates, not functions: the option travels as JSON into the HTML report.
        label: { show: true, position: "top", fontSize: 10, formatter: "×{@[2]}" },
        data: c.points.map((p) => [round(p.tokensPerSPerUser), round(p.outputTokensPerSPerGpu), p.load]),
      }),
    ),
  };
}
