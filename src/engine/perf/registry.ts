import { ServelabError } from "../../errors.ts";
import type { StepTimeModel } from "../perf-model.ts";
import type { AicProfile } from "./aic-profile.ts";
import { createPolynomialModel } from "./polynomial.ts";
import dsv32Gb200Dep8 from "./profiles/deepseek-v3.2-nvfp4-gb200-dep8.json" with { type: "json" };
import { createTableModel, type TableVariant } from "./table.ts";

/** The DeepSeek-V3.2 NVFP4 / GB200 / DEP8 profile, derived by scripts/derive-aic-profile.ts. */
export const DSV32_GB200_DEP8: AicProfile = dsv32Gb200Dep8 as AicProfile;

/**
 * The founding recipe's three DEP8 engine configs (recipes/dsv32-wideep-routing.yaml): prefill.yaml and
 * aggregated.yaml run the TRTLLM MoE backend, decode.yaml runs WIDEEP with the FP4 combine. Their
 * cuda_graph_config.max_batch_size bounds the graph-replayed decode steps. AIC's 0.9 PDL factor belongs to its
 * large-EP (WideEP) decode path only (SOURCE.md §3.3).
 */
export const DSV32_GB200_DEP8_VARIANTS = {
  prefill: { moeBackend: "TRTLLM", lowPrecisionCombine: false, cudaGraphMaxBatch: 32, graphLayerScale: 1 },
  aggregated: { moeBackend: "TRTLLM", lowPrecisionCombine: true, cudaGraphMaxBatch: 8, graphLayerScale: 1 },
  "decode-wideep": {
    moeBackend: "WIDEEP",
    lowPrecisionCombine: true,
    cudaGraphMaxBatch: 8,
    graphLayerScale: 0.9,
  },
} as const satisfies Record<string, TableVariant>;

const factories = new Map<string, () => StepTimeModel>([["polynomial", () => createPolynomialModel()]]);
for (const [variant, config] of Object.entries(DSV32_GB200_DEP8_VARIANTS)) {
  const name = `${DSV32_GB200_DEP8.name}/${variant}`;
  factories.set(name, () => createTableModel(DSV32_GB200_DEP8, config, { name }));
}

/** Names `getStepTimeModel` accepts: `polynomial` and `<profile>/<variant>` for each profiled deployment. */
export function stepTimeModelNames(): string[] {
  return [...factories.keys()];
}

/**
 * A step-time model by name, e.g. `polynomial` or `deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep`.
 * Unknown names are a usage error that lists the known ones.
 */
export function getStepTimeModel(name: string): StepTimeModel {
  const make = factories.get(name);
  if (!make)
    throw new ServelabError(
      "USAGE",
      `unknown step-time model ${JSON.stringify(name)}; known: ${stepTimeModelNames().join(", ")}`,
    );
  return make();
}
