import { z } from "zod";
import { nonNegativeInt, positiveInt, section } from "./section.ts";

/*
 * What only matters when a recipe runs on a Kubernetes cluster with Dynamo (`servelab deploy render`): images,
 * names of cluster objects, storage, secrets, scheduling and the environment of the engine pods. Every default is
 * the value of Dynamo's `recipes/deepseek-v32-fp4` (main @ c51febe8), the recipe servelab's founding A/B comes
 * from, so that recipe renders to its upstream manifests without a `deploy:` section. A recipe for another model or
 * cluster overrides what differs.
 */

export const DYNAMO_VERSIONS = ["1.3", "1.0"] as const;
export type DynamoVersion = (typeof DYNAMO_VERSIONS)[number];

/** The runtime image of each Dynamo release line (the newest patch release the recipe shipped with). */
export const DEFAULT_RUNTIME_IMAGES: Record<DynamoVersion, string> = {
  "1.3": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.1",
  "1.0": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.0.2",
};

/** A DNS-1123 label: what a namespace, a Secret or a claim may be called. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const dnsLabel = () =>
  z
    .string()
    .max(63)
    .regex(DNS1123_LABEL, { error: "must be a DNS-1123 label: lowercase letters, digits and '-'" });

const tolerationSchema = section({
  key: z.string().optional(),
  operator: z.enum(["Equal", "Exists"]).optional(),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
  tolerationSeconds: z.int().optional(),
});

export type Toleration = z.output<typeof tolerationSchema>;

/** Env values are strings in Kubernetes; a YAML `1` or `yes` left unquoted would be refused there, so here too. */
const envMap = () => z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/), z.string());

/**
 * Per engine group, under the recipe's group names (`workers` is the aggregated group); `all` applies to every
 * engine pod and the group's own entries add to it.
 */
const byGroup = <T extends z.ZodType>(
  item: () => T,
  empty: z.output<T>,
  defaults: Record<string, z.output<T>> = {},
) =>
  section({
    all: item().default((defaults.all ?? empty) as never),
    workers: item().default((defaults.workers ?? empty) as never),
    prefill: item().default((defaults.prefill ?? empty) as never),
    decode: item().default((defaults.decode ?? empty) as never),
  });

/** `NCCL_*`, `TRTLLM_*` … that every engine pod of the seed recipe sets (after `HF_HOME` / `TRITON_CACHE_DIR`). */
const SEED_WORKER_ENV = {
  NCCL_DEBUG: "INFO",
  NCCL_MNNVL_ENABLE: "1",
  NCCL_CUMEM_ENABLE: "1",
  NCCL_NVLS_ENABLE: "1",
  NVIDIA_GDRCOPY: "1",
  UCX_CUDA_IPC_ENABLE_MNNVL: "1",
  NCCL_SOCKET_IFNAME: "eth0",
  GLOO_SOCKET_IFNAME: "eth0",
  NCCL_STORE_TIMEOUT: "7200",
  TRTLLM_MOE_ENABLE_ALLTOALL_WITHOUT_ALLGATHER: "1",
  TRTLLM_ENABLE_PDL: "1",
  TRTLLM_SERVER_DISABLE_GC: "1",
  TRTLLM_WORKER_DISABLE_GC: "1",
  NCCL_GRAPH_MIXING_SUPPORT: "0",
  TLLM_LOG_LEVEL: "INFO",
};

/** The aggregated and decode engines (WideEP / MNNVL all-reduce) add these. */
const SEED_MOE_COMM_ENV = { TRTLLM_FORCE_COMM_METHOD: "NVLINK_TWO_SIDED", ENABLE_CONFIGURABLE_MOE: "1" };

/** The seed's prefill pods tolerate a cluster's `dedicated` taints; they only permit scheduling, never restrict it. */
const SEED_PREFILL_TOLERATIONS: Toleration[] = ["user-workload", "system-workload"].flatMap((value) =>
  (["NoSchedule", "NoExecute"] as const).map((effect) => ({
    key: "dedicated",
    operator: "Equal" as const,
    value,
    effect,
  })),
);

const imagesSchema = section({
  /** Frontend and engine image; omitted: the runtime of `dynamo_version` (DEFAULT_RUNTIME_IMAGES). */
  runtime: z.string().min(1).optional(),
  /** The benchmark Job installs AIPerf into this; on GB200 it must be an arm64 image. */
  perf: z.string().min(1).default("python:3.12-slim"),
  model_download: z.string().min(1).default("python:3.10-slim"),
});

const modelCacheSchema = section({
  claim_name: dnsLabel().default("model-cache"),
  size: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/)
    .default("400Gi"),
  // Every engine pod of an arm and both Jobs mount it at once, so it must be shared.
  access_mode: z
    .enum(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"])
    .default("ReadWriteMany"),
});

const computeDomainSchema = section({
  name: dnsLabel().default("your-compute-domain"),
  // 0: nodes join when pods claim the channel (the seed's on-demand allocation).
  num_nodes: nonNegativeInt().default(0),
});

const startupProbeSchema = section({
  period_seconds: positiveInt().default(60),
  // × period_seconds is how long a worker may take to load the model (60 min in the seed).
  failure_threshold: positiveInt().default(60),
  timeout_seconds: positiveInt().default(5),
});

const warmupSchema = section({
  input_tokens: positiveInt().default(10000),
  output_tokens: positiveInt().default(200),
  concurrency: positiveInt().default(4),
  request_count: positiveInt().default(10),
});

const perfSchema = section({
  aiperf_version: z.string().min(1).default("0.10.0"),
  /** Where the Job finds the trace on the model-cache volume; omitted: `/model-cache/traces/<datagen's name>`. */
  trace_file: z.string().startsWith("/").optional(),
  http_connection_limit: positiveInt().default(200),
  http_so_rcvtimeo_s: positiveInt().default(120),
  workers_max: positiveInt().default(200),
  record_processors: positiveInt().default(8),
  /** Prometheus endpoints AIPerf scrapes while it runs; Grove's pod naming is not stable enough to derive them. */
  server_metrics_urls: z.array(z.url()).default([]),
  /** `null`: no warm-up run before the replay. */
  warmup: warmupSchema.nullable().prefault({}),
});

export const deploySchema = section({
  /** Which Dynamo release the manifests target: the CRD they are validated against and the default runtime image. */
  dynamo_version: z.enum(DYNAMO_VERSIONS).default("1.3"),
  /** Omitted: no object names a namespace, so `kubectl -n` decides. */
  namespace: dnsLabel().optional(),
  /** Appended to each arm's name to make its DynamoGraphDeployment's name (`disagg-kv` → `disagg-kv-dsv32-nvfp4`). */
  name_suffix: z
    .string()
    .regex(/^(-[a-z0-9]+)*$/, { error: "must be empty or '-' separated lowercase words" })
    .default("-dsv32-nvfp4"),
  images: imagesSchema.prefault({}),
  /** The model-cache PVC's storage class; the seed's value is a placeholder to edit. */
  storage_class: z.string().min(1).default("your-storage-class-name"),
  model_cache: modelCacheSchema.prefault({}),
  compute_domain: computeDomainSchema.prefault({}),
  /** Secret holding `HF_TOKEN`, created beforehand with `kubectl create secret generic`. */
  hf_token_secret: dnsLabel().default("hf-token-secret"),
  /** Dynamo's `--request-plane` for frontend and workers. */
  request_plane: z.enum(["nats", "tcp", "http"]).default("nats"),
  /** Engine pods (and the frontend) only run on these nodes; GB200 trays are Grace, so arm64. */
  node_selector: z.record(z.string(), z.string()).default({ "kubernetes.io/arch": "arm64" }),
  tolerations: byGroup(() => z.array(tolerationSchema), [], { prefill: SEED_PREFILL_TOLERATIONS }).prefault(
    {},
  ),
  /** Extra env of the engine containers, in order; a group's entries add to (or override) `all`. */
  env: byGroup(
    envMap,
    {},
    {
      all: SEED_WORKER_ENV,
      workers: SEED_MOE_COMM_ENV,
      decode: { ENROOT_ALLOW_DEV: "yes", ...SEED_MOE_COMM_ENV },
    },
  ).prefault({}),
  startup_probe: startupProbeSchema.prefault({}),
  huggingface_hub_version: z.string().min(1).default("1.16.4"),
  perf: perfSchema.prefault({}),
});

export type DeployConfig = z.output<typeof deploySchema>;

/** The deploy settings of a recipe, its defaults filled in when it has no `deploy:` section. */
export function deploySettings(deploy: DeployConfig | undefined): DeployConfig {
  return deploy ?? deploySchema.parse({});
}
