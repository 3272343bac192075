import { type CapacityCurve, kneeText } from "./capacity.ts";
import { type ArmComparison, formatNumber } from "./compare.ts";

const pctText = (f: number) => `${formatNumber(100 * f)} %`;
const signedPct = (f: number) => {
  const text = formatNumber(Math.abs(100 * f));
  return /^0(\.0*)?$/.test(text) ? `±${text} %` : `${f > 0 ? "+" : "−"}${text} %`;
};

/**
 * The verdict a reader decides on, in a few lines: for the decision metric (goodput at the recipe's SLOs, then SLO
 * attainment) B against A with its interval, the knee of each arm when the load was swept, which arm was
 * overloaded, and how far the step-time model behind it can be trusted.
 */
export function headlineLines(
  c: ArmComparison,
  o: {
    curves?: readonly CapacityCurve[] | undefined;
    models: { lines: string[]; names: string[]; uncalibrated: boolean };
  },
): string[] {
  const a = c.baseline;
  const b = c.candidate;
  const parts: string[] = [];
  if (a.goodput && b.goodput && c.goodput) {
    const ga = a.goodput.goodputPerS.estimate;
    const gb = b.goodput.goodputPerS.estimate;
    const d = c.goodput.goodputDifference;
    parts.push(
      ga > 0
        ? `${signedPct(d.estimate / ga)} goodput [${signedPct(d.lo / ga)}, ${signedPct(d.hi / ga)}] (${formatNumber(ga)} → ${formatNumber(gb)} req/s)`
        : `goodput ${formatNumber(ga)} → ${formatNumber(gb)} req/s [Δ ${formatNumber(d.lo)}, ${formatNumber(d.hi)}]`,
      `SLO attainment ${pctText(a.goodput.attainment.estimate)} → ${pctText(b.goodput.attainment.estimate)}`,
    );
  } else {
    const ttft = c.metrics.find((m) => m.metric === "time_to_first_token")?.statistics.avg.ratio;
    if (ttft)
      parts.push(
        `TTFT avg ×${formatNumber(ttft.estimate)} [${formatNumber(ttft.lo)}, ${formatNumber(ttft.hi)}] (no goodput SLOs set)`,
      );
  }
  const ka = o.curves?.find((k) => k.arm === a.name);
  const kb = o.curves?.find((k) => k.arm === b.name);
  if (ka?.knee && kb?.knee) {
    const low = (k: CapacityCurve) => k.points[0]?.offeredRate ?? 0;
    parts.push(
      `knee ${kneeText(ka.knee, low(ka), formatNumber)} → ${kneeText(kb.knee, low(kb), formatNumber)}`,
    );
  }
  const lines = [`${b.name} vs ${a.name}: ${parts.join(", ")}.`];
  const overloaded = [a, b].filter((r) => r.overload.overloaded);
  lines.push(
    overloaded.length === 0
      ? "Neither arm was overloaded at the main load point."
      : overloaded
          .map((r) => `${r.name} was overloaded (${r.overload.reason.replace(/^overloaded: /, "")}).`)
          .join(" "),
  );
  if (o.curves) {
    const where = o.curves
      .map((k) => {
        const over = k.points.filter((p) => p.overloaded > 0).map((p) => `×${p.load}`);
        return over.length > 0 ? `${k.arm} at ${over.join(", ")}` : null;
      })
      .filter((x) => x !== null);
    lines.push(
      where.length > 0
        ? `Overloaded across the sweep: ${where.join("; ")}.`
        : "No arm was overloaded anywhere in the sweep.",
    );
  }
  if (o.models.names.length > 0)
    lines.push(
      `Step-time model: ${o.models.names.join(", ")} — ${o.models.uncalibrated ? "UNCALIBRATED: the figures are illustrative only" : "calibrated on a measured kernel profile"}.`,
    );
  return lines;
}
