import { join } from "node:path";
import type { ExperimentManifest } from "../experiment/plan.ts";
import type { GoodputSlo } from "../metrics/goodput.ts";
import { type ArmArtifacts, readArmArtifacts } from "./artifacts.ts";
import type { CapacityRun } from "./capacity.ts";
import { summarizeArm } from "./compare.ts";

/**
 * Reads every run of a sweep (`experiment.json` in `outDir`) back from its artifacts and reduces each to its
 * capacity figures: offered rate, goodput and SLO attainment, TTFT/ITL p50/p99, output throughput, overload.
 */
export async function readCapacityRuns(
  outDir: string,
  manifest: ExperimentManifest,
  opts: {
    slos: readonly GoodputSlo[];
    seed: number;
    gpusOf: (arm: string) => number | null;
    /** Runs already read (the main point's arms), by their directory in the manifest: not read again. */
    read?: ReadonlyMap<string, ArmArtifacts>;
  },
): Promise<CapacityRun[]> {
  const runs: CapacityRun[] = [];
  for (const run of manifest.runs) {
    const a = opts.read?.get(run.dir) ?? (await readArmArtifacts(join(outDir, run.dir), run.arm));
    const r = summarizeArm(
      {
        name: run.arm,
        records: a.records,
        queue: a.sim?.timeline?.map(({ t_s, waiting }) => ({ t_s, waiting })),
      },
      { seed: opts.seed, slos: opts.slos },
    );
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    let outputTokens = 0;
    for (const rec of a.records) {
      first = Math.min(first, rec.startNs);
      last = Math.max(last, rec.startNs);
      if (!rec.error) outputTokens += rec.outputTokens;
    }
    const spanS = (last - first) / 1e9;
    const itlAvg = r.metrics.inter_token_latency?.avg;
    runs.push({
      arm: run.arm,
      load: run.point.load,
      traceSeed: run.point.traceSeed,
      offeredRate: spanS > 0 ? (a.records.length - 1) / spanS : 0,
      gpus: opts.gpusOf(run.arm) ?? Number.NaN,
      goodput: r.goodput ? r.goodput.goodputPerS.estimate : null,
      attainment: r.goodput ? r.goodput.attainment : null,
      ttftP50: r.metrics.time_to_first_token?.p50 ?? null,
      ttftP99: r.metrics.time_to_first_token?.p99 ?? null,
      itlP50: r.metrics.inter_token_latency?.p50 ?? null,
      itlP99: r.metrics.inter_token_latency?.p99 ?? null,
      outputTokensPerS: r.durationS ? outputTokens / r.durationS : 0,
      tokensPerSPerUser: itlAvg ? 1000 / itlAvg : null,
      overloaded: r.overload.overloaded,
    });
  }
  return runs;
}
