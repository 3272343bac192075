import type { DeployConfig } from "../recipe/deploy-schema.ts";
import type { Recipe } from "../recipe/schema.ts";
import { shellWord } from "./aiperf-command.ts";
import { DGD_LABEL, deploymentName, MODEL_CACHE_MOUNT, PERF_ROOT, perfJobName } from "./names.ts";

/*
 * The commands that bring a cluster run home. The perf Job writes to the model-cache volume and its pod has exited
 * by then, so a small pod mounts the volume and `kubectl cp` copies each run directory
 * (`/model-cache/perf/<epoch>_<job-name>/`) out of it, where `servelab report --recipe` reads it as an arm.
 */

export const VOLUME_POD = "servelab-volume";
const VOLUME_POD_IMAGE = "busybox:1.36";

/** A pod that mounts the model-cache volume, to copy the trace in and the results out with `kubectl cp`. */
function volumePodCommands(d: DeployConfig, purpose: string): string[] {
  const ns = d.namespace ? ` -n ${d.namespace}` : "";
  const overrides = {
    spec: {
      containers: [
        {
          name: VOLUME_POD,
          image: VOLUME_POD_IMAGE,
          command: ["sleep", "3600"],
          volumeMounts: [{ name: "model-cache", mountPath: MODEL_CACHE_MOUNT }],
        },
      ],
      volumes: [{ name: "model-cache", persistentVolumeClaim: { claimName: d.model_cache.claim_name } }],
    },
  };
  return [
    `# A pod that mounts the model-cache volume (${purpose}):`,
    `kubectl${ns} run ${VOLUME_POD} --image=${VOLUME_POD_IMAGE} --restart=Never --overrides='${JSON.stringify(overrides)}'`,
    `kubectl${ns} wait --for=condition=Ready pod/${VOLUME_POD} --timeout=300s`,
  ];
}

export interface ResultsOptions {
  /** Local directory the run directories are copied into. */
  out: string;
  /** The recipe file, for the report command. */
  recipeFile?: string;
  arms?: readonly string[];
}

/** The `kubectl` lines, one command per line, for the recipe's arms (all perf Jobs when no recipe). */
export function resultsCommands(recipe: Recipe | undefined, d: DeployConfig, o: ResultsOptions): string[] {
  const ns = d.namespace ? ` -n ${d.namespace}` : "";
  const out = shellWord(o.out);
  const lines = [...volumePodCommands(d, "the perf Job's own pod has exited"), `mkdir -p ${out}`];
  const arms = recipe ? (o.arms && o.arms.length > 0 ? o.arms : Object.keys(recipe.arms)) : [];
  const jobs = recipe
    ? arms.map((a) => ({ arm: a, job: perfJobName(deploymentName(a, d.name_suffix)) }))
    : [];
  // Each Job run leaves `<epoch>_<job-name>`; a rerun leaves another, and every one is copied.
  const pattern = (job: string) => `_${job}$`;
  for (const { arm, job } of jobs) {
    lines.push(
      `# arm ${arm} (Job ${job}):`,
      `for run in $(kubectl${ns} exec ${VOLUME_POD} -- ls ${PERF_ROOT} | grep '${pattern(job)}'); do kubectl${ns} cp ${VOLUME_POD}:${PERF_ROOT}/$run ${out}/$run; done`,
    );
  }
  if (!recipe)
    lines.push(
      "# every perf Job's runs:",
      `for run in $(kubectl${ns} exec ${VOLUME_POD} -- ls ${PERF_ROOT} | grep -- '-bench$'); do kubectl${ns} cp ${VOLUME_POD}:${PERF_ROOT}/$run ${out}/$run; done`,
    );
  lines.push(`kubectl${ns} delete pod ${VOLUME_POD}`);
  const recipeFlag = o.recipeFile ? ` --recipe ${shellWord(o.recipeFile)}` : "";
  lines.push("# then, with the baseline's run first:", `servelab report${recipeFlag} ${out}/*`);
  return lines;
}

/** The recipe arm a copied run directory measured: the arm the Job recorded, else the deployment's arm. */
export function armOfRun(
  recipe: Recipe,
  d: DeployConfig,
  run: { arm?: string; deployment?: string },
): string | undefined {
  if (run.arm !== undefined && Object.hasOwn(recipe.arms, run.arm)) return run.arm;
  if (run.deployment === undefined) return undefined;
  return Object.keys(recipe.arms).find((a) => deploymentName(a, d.name_suffix) === run.deployment);
}

export interface NextStepsOptions {
  /** Where the manifests were written. */
  out: string;
  recipeFile: string;
  /** The trace file name the perf Jobs expect under /model-cache/traces/. */
  traceName: string;
  traceDir: string;
  arms: readonly string[];
}

/** What to run after `deploy render`, in order: secret, model cache, trace, then each arm and its benchmark. */
export function nextSteps(d: DeployConfig, o: NextStepsOptions): string[] {
  const ns = d.namespace ? ` -n ${d.namespace}` : "";
  const out = shellWord(o.out);
  const trace = shellWord(o.traceName);
  const lines = [
    `kubectl${ns} create secret generic ${d.hf_token_secret} --from-literal=HF_TOKEN=<your token>`,
    `kubectl${ns} apply -f ${out}/model-cache/`,
    `kubectl${ns} wait --for=condition=complete job/model-download --timeout=6h`,
    `servelab trace synthesize --recipe ${shellWord(o.recipeFile)} --output ${trace}`,
    ...volumePodCommands(d, "to copy the trace in"),
    `kubectl${ns} exec ${VOLUME_POD} -- mkdir -p ${o.traceDir}`,
    `kubectl${ns} cp ${trace} ${VOLUME_POD}:${o.traceDir}/${trace}`,
    `kubectl${ns} delete pod ${VOLUME_POD}`,
  ];
  for (const arm of o.arms) {
    const dgd = deploymentName(arm, d.name_suffix);
    lines.push(
      `# arm ${arm}:`,
      `kubectl${ns} apply -f ${out}/${arm}/deploy.yaml`,
      `kubectl${ns} wait --for=condition=Ready pod -l ${DGD_LABEL}=${dgd} --timeout=90m`,
      `kubectl${ns} apply -f ${out}/${arm}/perf.yaml`,
      `kubectl${ns} logs -f job/${perfJobName(dgd)}`,
      `kubectl${ns} delete -f ${out}/${arm}/deploy.yaml   # frees the GPUs for the next arm`,
    );
  }
  lines.push(
    `servelab deploy results ${shellWord(o.recipeFile)}${d.namespace ? ` --namespace ${d.namespace}` : ""}`,
  );
  return lines;
}
