import type { GroupRole } from "../recipe/schema.ts";

/*
 * Names of the cluster objects an arm becomes. They follow Dynamo's recipe (`<dgd>-frontend`, `<dgd>-bench`,
 * services `agg` / `prefill` / `dec`), except the engine ConfigMap, which is per arm here: upstream gives both arms
 * one ConfigMap name, so applying the second arm in the same namespace replaces the first one's engine files.
 */

/** Service key in `spec.services` for each engine group. */
export const SERVICE_KEY: Record<GroupRole, string> = { workers: "agg", prefill: "prefill", decode: "dec" };

/** `--disaggregation-mode` and `subComponentType` of each group; the aggregated one passes neither. */
export const GROUP_SUBTYPE: Record<GroupRole, "prefill" | "decode" | undefined> = {
  workers: undefined,
  prefill: "prefill",
  decode: "decode",
};

/** The ConfigMap key (and `/config/<key>` file) holding each group's TensorRT-LLM engine YAML. */
export const ENGINE_CONFIG_KEY: Record<GroupRole, string> = {
  workers: "aggregated.yaml",
  prefill: "prefill.yaml",
  decode: "decode.yaml",
};

export const FRONTEND_SERVICE = "Frontend";
/** Where the engine ConfigMap is mounted in the workers. */
export const CONFIG_MOUNT = "/config";
/** Where the model-cache volume is mounted in the engine pods and the perf Job. */
export const MODEL_CACHE_MOUNT = "/model-cache";
/** The perf Job writes each run under `<this>/<epoch>_<job-name>/`. */
export const PERF_ROOT = `${MODEL_CACHE_MOUNT}/perf`;
export const TRACES_DIR = `${MODEL_CACHE_MOUNT}/traces`;
/** Dynamo's frontend HTTP port and the workers' system port (health, metrics). */
export const FRONTEND_PORT = 8000;
export const SYSTEM_PORT = 9090;
/** The label the operator puts on every pod of a graph deployment. */
export const DGD_LABEL = "nvidia.com/dynamo-graph-deployment-name";
/** The container-level claim name the engine pods use for the ComputeDomain channel. */
export const CHANNEL_CLAIM = "compute-domain-channel";

/** The DynamoGraphDeployment of an arm: its name lowercased, `_` as `-`, plus the recipe's suffix. */
export function deploymentName(arm: string, suffix: string): string {
  return `${arm.toLowerCase().replace(/_/g, "-")}${suffix}`;
}

export const configMapName = (dgd: string) => `${dgd}-trtllm-config`;
export const perfJobName = (dgd: string) => `${dgd}-bench`;
export const frontendHost = (dgd: string) => `${dgd}-${FRONTEND_SERVICE.toLowerCase()}`;
/** The ResourceClaimTemplate the ComputeDomain controller creates for its channel. */
export const channelTemplateName = (computeDomain: string) => `${computeDomain}-channel`;

/**
 * Dynamo 1.3's webhook bound on Grove names: the PodCliqueSet (the DGD name), the service key and the longest
 * PodClique name (`<svc>-ldr` / `<svc>-wkr` for a multinode service) together stay within 45 characters.
 */
export const GROVE_NAME_BUDGET = 45;

export function groveNameLength(dgd: string, service: string, multinode: boolean): number {
  const svc = service.toLowerCase();
  return dgd.length + svc.length + (multinode ? svc.length + 4 : svc.length);
}
