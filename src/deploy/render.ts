import { stringify } from "yaml";
import { ServelabError } from "../errors.ts";
import type { DeployConfig, DynamoVersion } from "../recipe/deploy-schema.ts";
import { DEFAULT_RUNTIME_IMAGES, DNS1123_LABEL, deploySettings } from "../recipe/deploy-schema.ts";
import type { EngineConfig } from "../recipe/engine-schema.ts";
import {
  type Arm,
  armGpuCount,
  armWorkerGroups,
  type GroupRole,
  type Recipe,
  type WorkerGroup,
} from "../recipe/schema.ts";
import {
  CHANNEL_CLAIM,
  CONFIG_MOUNT,
  channelTemplateName,
  configMapName,
  deploymentName,
  ENGINE_CONFIG_KEY,
  FRONTEND_SERVICE,
  GROUP_SUBTYPE,
  MODEL_CACHE_MOUNT,
  SERVICE_KEY,
  SYSTEM_PORT,
} from "./names.ts";
import { renderPerfJob } from "./perf-job.ts";

/*
 * A recipe's arms as the Kubernetes objects Dynamo runs them with: per arm a DynamoGraphDeployment and its engine
 * ConfigMap (`<arm>/deploy.yaml`) and the benchmark Job (`<arm>/perf.yaml`); shared by the arms, the model-cache
 * PVC, the ComputeDomain and the model-download Job (`model-cache/`). The layout and every field follow Dynamo's
 * recipe, so `kubectl apply -f` on these files runs what that recipe runs. Pure: same recipe, same objects.
 */

export type Manifest = Record<string, unknown>;

export interface RenderedFile {
  /** Relative to the output directory, `/`-separated. */
  path: string;
  /** The arm the file belongs to; undefined for the shared objects. */
  arm?: string;
  docs: Manifest[];
  /** GPUs the arm's engines take, stated in the header so `deploy validate` can check them. */
  gpus?: number;
}

export interface RenderOptions {
  /** Arms to render; default all. */
  arms?: readonly string[];
  dynamoVersion?: DynamoVersion;
  namespace?: string;
  storageClass?: string;
}

/** The deploy settings after command-line overrides. */
export function effectiveDeploy(recipe: Recipe, opts: RenderOptions = {}): DeployConfig {
  const d = deploySettings(recipe.deploy);
  if (opts.namespace !== undefined && (opts.namespace.length > 63 || !DNS1123_LABEL.test(opts.namespace)))
    throw new ServelabError(
      "USAGE",
      `--namespace ${JSON.stringify(opts.namespace)} is not a DNS-1123 label (lowercase letters, digits, '-')`,
    );
  return {
    ...d,
    ...(opts.dynamoVersion ? { dynamo_version: opts.dynamoVersion } : {}),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.storageClass ? { storage_class: opts.storageClass } : {}),
  };
}

export function runtimeImage(d: DeployConfig): string {
  return d.images.runtime ?? DEFAULT_RUNTIME_IMAGES[d.dynamo_version];
}

function metadata(name: string, d: DeployConfig, extra: Manifest = {}): Manifest {
  return { name, ...(d.namespace ? { namespace: d.namespace } : {}), ...extra };
}

const POD_UID_ENV = { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } };

/** Env entries from ordered maps, later maps overriding a name in place. */
function envList(...maps: Readonly<Record<string, string>>[]): { name: string; value: string }[] {
  const merged = new Map<string, string>();
  for (const m of maps) for (const [k, v] of Object.entries(m)) merged.set(k, v);
  return [...merged].map(([name, value]) => ({ name, value }));
}

/**
 * Dynamo frontend flags for the router knobs that differ from Dynamo's defaults; the flag names are the ones the
 * frontend documents. A knob servelab models but whose flag is not known is refused rather than silently dropped.
 */
function routerArgs(armName: string, arm: Arm): string[] {
  const r = arm.router;
  const args = ["--router-mode", r.mode];
  if (r.mode !== "kv") return args;
  if (r.overlap_score_weight !== 1) args.push("--kv-overlap-score-weight", String(r.overlap_score_weight));
  if (r.router_temperature !== 0) args.push("--router-temperature", String(r.router_temperature));
  if (!r.use_kv_events) args.push("--no-kv-events");
  if (r.router_replica_sync) args.push("--router-replica-sync");
  if (r.router_reset_states) args.push("--router-reset-states");
  if (r.router_snapshot_threshold !== 1_000_000)
    args.push("--router-snapshot-threshold", String(r.router_snapshot_threshold));
  const unflagged: [keyof typeof r, unknown][] = [
    ["router_track_active_blocks", true],
    ["router_track_output_blocks", false],
    ["router_assume_kv_reuse", true],
    ["router_ttl_secs", 120],
    ["router_max_tree_size", 2 ** 20],
    ["router_prune_target_ratio", 0.8],
    ["router_queue_threshold", 2],
    ["router_queue_policy", "fcfs"],
    ["router_event_threads", 4],
  ];
  const off = unflagged.filter(([k, dflt]) => r[k] !== dflt).map(([k]) => k);
  if (off.length > 0)
    throw new ServelabError(
      "DEPLOY_RENDER",
      `arms.${armName}.router: ${off.join(", ")} differ from Dynamo's defaults, but servelab does not know the frontend flags that set them`,
      ["set them back to their defaults to render, or run this arm in the simulator only"],
    );
  return args;
}

function frontendService(armName: string, arm: Arm, d: DeployConfig): Manifest {
  return {
    componentType: "frontend",
    replicas: 1,
    extraPodSpec: {
      ...(Object.keys(d.node_selector).length > 0 ? { nodeSelector: d.node_selector } : {}),
      mainContainer: {
        name: "",
        image: runtimeImage(d),
        command: ["python3"],
        args: ["-m", "dynamo.frontend", ...routerArgs(armName, arm), "--request-plane", d.request_plane],
        env: [POD_UID_ENV],
        resources: {},
      },
    },
  };
}

/** TensorRT-LLM options whose default means "not set": written only when the recipe sets something else. */
const OMITTED_AT_DEFAULT: Partial<Record<keyof EngineConfig, unknown>> = {
  enable_chunked_prefill: false,
  disable_overlap_scheduler: false,
  allreduce_strategy: "AUTO",
  num_postprocess_workers: 0,
  stream_interval: 1,
};

/**
 * The engine YAML a worker reads with `--extra-engine-args`: the recipe's engine block under TensorRT-LLM's own
 * names. Options whose default is TRT-LLM's "unset" are left out when at that default, as upstream's files do;
 * the sizing options are always written, so the file says what runs.
 */
export function engineConfigDoc(e: EngineConfig): Manifest {
  const out: Manifest = {};
  const put = (key: keyof EngineConfig, value: unknown) => {
    if (key in OMITTED_AT_DEFAULT && OMITTED_AT_DEFAULT[key] === value) return;
    out[key] = value;
  };
  put("tensor_parallel_size", e.tensor_parallel_size);
  put("enable_attention_dp", e.enable_attention_dp);
  const adp = e.attention_dp_config;
  if (adp.enable_balance || adp.timeout_iters !== 50 || adp.batching_wait_iters !== 10)
    out.attention_dp_config = adp;
  put("moe_expert_parallel_size", e.moe_expert_parallel_size);
  out.moe_config = {
    backend: e.moe_config.backend,
    ...(e.moe_config.use_low_precision_moe_combine ? { use_low_precision_moe_combine: true } : {}),
  };
  put("max_batch_size", e.max_batch_size);
  put("cuda_graph_config", e.cuda_graph_config);
  put("max_num_tokens", e.max_num_tokens);
  if (e.max_seq_len !== undefined) put("max_seq_len", e.max_seq_len);
  put("enable_chunked_prefill", e.enable_chunked_prefill);
  put("disable_overlap_scheduler", e.disable_overlap_scheduler);
  const kv = e.kv_cache_config;
  out.kv_cache_config = {
    dtype: kv.dtype,
    enable_block_reuse: kv.enable_block_reuse,
    free_gpu_memory_fraction: kv.free_gpu_memory_fraction,
    tokens_per_block: kv.tokens_per_block,
    ...(kv.max_tokens === undefined ? {} : { max_tokens: kv.max_tokens }),
  };
  put("allreduce_strategy", e.allreduce_strategy);
  if (e.cache_transceiver_config) put("cache_transceiver_config", e.cache_transceiver_config);
  put("num_postprocess_workers", e.num_postprocess_workers);
  put("stream_interval", e.stream_interval);
  put("print_iter_log", e.print_iter_log);
  for (const [k, v] of Object.entries(e.not_modelled ?? {})) out[k] = v;
  return out;
}

function workerArgs(recipe: Recipe, role: GroupRole, g: WorkerGroup, d: DeployConfig): string[] {
  const sub = GROUP_SUBTYPE[role];
  return [
    "--model-path",
    recipe.model.model_path,
    "--served-model-name",
    recipe.model.served_model_name,
    "--extra-engine-args",
    `${CONFIG_MOUNT}/${ENGINE_CONFIG_KEY[role]}`,
    ...(sub ? ["--disaggregation-mode", sub] : []),
    ...(g.publish_events_and_metrics ? ["--publish-events-and-metrics"] : []),
    "--request-plane",
    d.request_plane,
    "--kv-block-size",
    String(g.kv_block_size),
  ];
}

function workerService(
  recipe: Recipe,
  dgd: string,
  role: GroupRole,
  g: WorkerGroup,
  d: DeployConfig,
): Manifest {
  const sub = GROUP_SUBTYPE[role];
  const gpusPerNode = g.gpus_per_worker / g.nodes_per_worker;
  const tolerations = [...d.tolerations.all, ...d.tolerations[role]];
  return {
    componentType: "worker",
    ...(sub ? { subComponentType: sub } : {}),
    envFromSecret: d.hf_token_secret,
    replicas: g.replicas,
    // Dynamo's multinode needs at least 2 nodes; a single-node worker simply has no multinode block.
    ...(g.nodes_per_worker > 1 ? { multinode: { nodeCount: g.nodes_per_worker } } : {}),
    resources: { limits: { gpu: String(gpusPerNode) }, claims: [{ name: CHANNEL_CLAIM }] },
    extraPodSpec: {
      ...(Object.keys(d.node_selector).length > 0 ? { nodeSelector: d.node_selector } : {}),
      ...(tolerations.length > 0 ? { tolerations } : {}),
      resourceClaims: [
        { name: CHANNEL_CLAIM, resourceClaimTemplateName: channelTemplateName(d.compute_domain.name) },
      ],
      volumes: [
        { name: "model-cache", persistentVolumeClaim: { claimName: d.model_cache.claim_name } },
        { name: "trtllm-config", configMap: { name: configMapName(dgd) } },
      ],
      mainContainer: {
        name: "",
        image: runtimeImage(d),
        command: ["python3", "-m", "dynamo.trtllm"],
        args: workerArgs(recipe, role, g, d),
        env: [
          POD_UID_ENV,
          ...envList(
            { HF_HOME: MODEL_CACHE_MOUNT, TRITON_CACHE_DIR: `${MODEL_CACHE_MOUNT}/.triton-cache` },
            d.env.all,
            d.env[role],
          ),
        ],
        securityContext: { runAsUser: 0 },
        startupProbe: {
          httpGet: { path: "/live", port: SYSTEM_PORT },
          periodSeconds: d.startup_probe.period_seconds,
          failureThreshold: d.startup_probe.failure_threshold,
          timeoutSeconds: d.startup_probe.timeout_seconds,
        },
        volumeMounts: [
          { name: "model-cache", mountPath: MODEL_CACHE_MOUNT },
          { name: "trtllm-config", mountPath: CONFIG_MOUNT, readOnly: true },
        ],
        workingDir: "/workspace/",
        resources: {},
      },
    },
  };
}

/** Engine YAML as the ConfigMap stores it: block style, keys in the recipe's order. */
function engineYaml(e: EngineConfig): string {
  return stringify(engineConfigDoc(e), { lineWidth: 0, aliasDuplicateObjects: false });
}

export function renderArm(recipe: Recipe, armName: string, d: DeployConfig): RenderedFile[] {
  const arm = recipe.arms[armName];
  if (!arm) throw new ServelabError("USAGE", `no arm ${armName} in recipe ${recipe.name}`);
  const dgd = deploymentName(armName, d.name_suffix);
  const groups = armWorkerGroups(arm);
  const services: Manifest = { [FRONTEND_SERVICE]: frontendService(armName, arm, d) };
  for (const { role, group } of groups)
    services[SERVICE_KEY[role]] = workerService(recipe, dgd, role, group, d);
  const graph: Manifest = {
    apiVersion: "nvidia.com/v1alpha1",
    kind: "DynamoGraphDeployment",
    metadata: metadata(dgd, d),
    spec: { services },
  };
  const configMap: Manifest = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadata(configMapName(dgd), d),
    data: Object.fromEntries(
      groups.map(({ role, group }) => [ENGINE_CONFIG_KEY[role], engineYaml(group.engine)]),
    ),
  };
  const gpus = armGpuCount(arm);
  return [
    { path: `${armName}/deploy.yaml`, arm: armName, docs: [graph, configMap], gpus },
    { path: `${armName}/perf.yaml`, arm: armName, docs: [renderPerfJob(recipe, armName, dgd, d)], gpus },
  ];
}

function sharedFiles(recipe: Recipe, d: DeployConfig): RenderedFile[] {
  const pvc: Manifest = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: metadata(d.model_cache.claim_name, d),
    spec: {
      accessModes: [d.model_cache.access_mode],
      resources: { requests: { storage: d.model_cache.size } },
      storageClassName: d.storage_class,
    },
  };
  const computeDomain: Manifest = {
    apiVersion: "resource.nvidia.com/v1beta1",
    kind: "ComputeDomain",
    metadata: metadata(d.compute_domain.name, d),
    spec: {
      numNodes: d.compute_domain.num_nodes,
      channel: { resourceClaimTemplate: { name: channelTemplateName(d.compute_domain.name) } },
    },
  };
  const store = "/model-store";
  const download: Manifest = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: metadata("model-download", d),
    spec: {
      backoffLimit: 3,
      completions: 1,
      parallelism: 1,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [
            {
              name: "model-download",
              image: d.images.model_download,
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
              },
              command: ["sh", "-c"],
              args: [
                `set -eux\npip install --no-cache-dir huggingface_hub==${d.huggingface_hub_version}\nhf download "$MODEL_NAME"\n`,
              ],
              envFrom: [{ secretRef: { name: d.hf_token_secret } }],
              env: [
                { name: "MODEL_NAME", value: recipe.model.model_path },
                { name: "HF_HOME", value: store },
                // hf's Xet transfer buffers are what the 64Gi memory request is for.
                { name: "HF_XET_HIGH_PERFORMANCE", value: "1" },
              ],
              resources: { requests: { cpu: "2", memory: "64Gi" }, limits: { cpu: "8", memory: "64Gi" } },
              volumeMounts: [{ name: "model-cache", mountPath: store }],
            },
          ],
          volumes: [{ name: "model-cache", persistentVolumeClaim: { claimName: d.model_cache.claim_name } }],
        },
      },
    },
  };
  return [
    { path: "model-cache/model-cache.yaml", docs: [pvc] },
    { path: "model-cache/compute-domain.yaml", docs: [computeDomain] },
    { path: "model-cache/model-download.yaml", docs: [download] },
  ];
}

/** Every file of the recipe's (selected) arms, shared files first, then arms in recipe order. */
export function renderRecipe(recipe: Recipe, opts: RenderOptions = {}): RenderedFile[] {
  const d = effectiveDeploy(recipe, opts);
  const arms = opts.arms && opts.arms.length > 0 ? [...opts.arms] : Object.keys(recipe.arms);
  for (const a of arms)
    if (!Object.hasOwn(recipe.arms, a))
      throw new ServelabError(
        "USAGE",
        `--arm ${a}: recipe ${recipe.name} has no such arm; arms: ${Object.keys(recipe.arms).join(", ")}`,
      );
  return [...sharedFiles(recipe, d), ...arms.flatMap((a) => renderArm(recipe, a, d))];
}

export interface HeaderInfo {
  recipe: string;
  servelabVersion: string;
  dynamoVersion: DynamoVersion;
  arm?: string;
  gpus?: number;
}

const HEADER =
  /^# Rendered by servelab (\S+) from recipe (\S+)(?:, arm (\S+) \((\d+) GPUs\))?, for Dynamo (\S+)\.$/m;

export function headerComment(h: HeaderInfo): string {
  const arm = h.arm === undefined ? "" : `, arm ${h.arm} (${h.gpus} GPUs)`;
  return (
    `# Rendered by servelab ${h.servelabVersion} from recipe ${h.recipe}${arm}, for Dynamo ${h.dynamoVersion}.\n` +
    "# Change the recipe and render again rather than editing this file.\n"
  );
}

/** What a rendered file's header says, or undefined for a file servelab did not write. */
export function parseHeader(text: string): HeaderInfo | undefined {
  const m = HEADER.exec(text.slice(0, 400));
  if (!m) return undefined;
  return {
    servelabVersion: m[1]!,
    recipe: m[2]!,
    ...(m[3] === undefined ? {} : { arm: m[3], gpus: Number(m[4]) }),
    dynamoVersion: m[5] as DynamoVersion,
  };
}

/**
 * A file's text: the header, then its documents separated by `---`. Written with YAML 1.1 quoting (kubectl reads
 * YAML 1.1, where a bare `yes` or `on` is a boolean), so every string value reads back as a string.
 */
export function fileText(file: RenderedFile, header: Omit<HeaderInfo, "arm" | "gpus">): string {
  const body = file.docs
    .map((doc) => stringify(doc, { version: "1.1", lineWidth: 0, aliasDuplicateObjects: false }))
    .join("---\n");
  return `${headerComment({ ...header, ...(file.arm === undefined ? {} : { arm: file.arm, gpus: file.gpus! }) })}---\n${body}`;
}
