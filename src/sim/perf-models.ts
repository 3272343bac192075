import type { WorkerRole } from "../engine/engine-worker.ts";
import { createPolynomialModel } from "../engine/perf/polynomial.ts";
import type { StepTimeModel } from "../engine/perf-model.ts";
import { ServelabError } from "../errors.ts";
import type { WorkerGroup } from "../recipe/schema.ts";

export type PerfModelChoice = (group: WorkerGroup, role: WorkerRole) => StepTimeModel;

export const PERF_MODELS = ["polynomial"] as const;

/** The step-time model a simulation uses for each worker group, by name. */
export function perfModelChoice(name: string): PerfModelChoice {
  switch (name) {
    case "polynomial": {
      const model = createPolynomialModel();
      return () => model;
    }
    default:
      throw new ServelabError("USAGE", `unknown step-time model "${name}"; known: ${PERF_MODELS.join(", ")}`);
  }
}
