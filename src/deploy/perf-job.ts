// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are bash, whose ${VAR} references are meant literally
import { basename } from "node:path";
import { defaultSynthesisName } from "../cli/trace.ts";
import type { DeployConfig } from "../recipe/deploy-schema.ts";
import { recipeSynthesisOptions } from "../recipe/load.ts";
import type { Recipe } from "../recipe/schema.ts";
import { DATASETS, isDatasetName } from "../trace/datasets.ts";
import { type AiperfFlag, formatAiperfCommand } from "./aiperf-command.ts";
import {
  DGD_LABEL,
  FRONTEND_PORT,
  frontendHost,
  MODEL_CACHE_MOUNT,
  PERF_ROOT,
  perfJobName,
  TRACES_DIR,
} from "./names.ts";
import type { Manifest } from "./render.ts";

/*
 * The benchmark Job of an arm: it waits for the frontend to list the model, runs an AIPerf warm-up, then replays
 * the recipe's trace on its timestamps with the recipe's goodput SLOs, writing AIPerf's exports under
 * `/model-cache/perf/<epoch>_<job-name>/<trace name>/` on the model-cache volume, where `deploy results` finds them.
 */

/** AIPerf's default `--prompt-input-tokens-block-size`; the flag is written only for another value. */
const AIPERF_DEFAULT_BLOCK_SIZE = 512;

/** Goodput metrics the Job passes through env, as upstream's perf.yaml does. */
const SLO_ENV: Record<string, string> = {
  time_to_first_token: "TTFT_THRESHOLD_MS",
  inter_token_latency: "ITL_THRESHOLD_MS",
};

/** The trace's file name as Dynamo's datagen names it (what the recipe README copies into the volume). */
export function traceFileName(recipe: Recipe): string {
  const src = recipe.trace.source;
  const file = isDatasetName(src) ? DATASETS[src].relativePath : src;
  const synthesis = recipeSynthesisOptions(recipe);
  return synthesis ? defaultSynthesisName(file, synthesis, false) : basename(file);
}

export function traceFilePath(recipe: Recipe, d: DeployConfig): string {
  return d.perf.trace_file ?? `${TRACES_DIR}/${traceFileName(recipe)}`;
}

const num = (n: number) => String(n);

export function warmupFlags(recipe: Recipe, d: DeployConfig): AiperfFlag[] | undefined {
  const w = d.perf.warmup;
  if (!w) return undefined;
  const out = num(w.output_tokens);
  return [
    ["-m", recipe.model.served_model_name],
    ["--tokenizer", recipe.model.model_path],
    ["--url", "http://${ENDPOINT}"],
    ["--streaming", null],
    ["--ui", "dashboard"],
    ["--synthetic-input-tokens-mean", num(w.input_tokens)],
    ["--synthetic-input-tokens-stddev", "0"],
    ["--output-tokens-mean", out],
    ["--output-tokens-stddev", "0"],
    ["--extra-inputs", `max_tokens:${out}`],
    ["--extra-inputs", `min_tokens:${out}`],
    ["--extra-inputs", "ignore_eos:true"],
    ["--concurrency", num(w.concurrency)],
    ["--request-count", num(w.request_count)],
  ];
}

/** The trace replay's flags; the server-metrics flags are added by the script from its env. */
export function replayFlags(recipe: Recipe, d: DeployConfig): AiperfFlag[] {
  const b = recipe.benchmark;
  const flags: AiperfFlag[] = [
    ["-m", recipe.model.served_model_name],
    ["--tokenizer", recipe.model.model_path],
    ["--input-file", "${TRACE_FILE}"],
    ["--custom-dataset-type", "mooncake_trace"],
  ];
  if (b.mode === "fixed_schedule") {
    flags.push(["--fixed-schedule", null]);
    if (b.auto_offset) flags.push(["--fixed-schedule-auto-offset", null]);
    if (b.start_offset_ms !== undefined)
      flags.push(["--fixed-schedule-start-offset", num(b.start_offset_ms)]);
    if (b.end_offset_ms !== undefined) flags.push(["--fixed-schedule-end-offset", num(b.end_offset_ms)]);
  } else if (b.mode === "concurrency") {
    flags.push(["--concurrency", num(b.concurrency)]);
    if (b.request_count !== undefined) flags.push(["--request-count", num(b.request_count)]);
  } else {
    flags.push(["--request-rate", num(b.request_rate)], ["--request-rate-mode", b.request_rate_mode]);
    if (b.concurrency !== undefined) flags.push(["--concurrency", num(b.concurrency)]);
    if (b.request_count !== undefined) flags.push(["--request-count", num(b.request_count)]);
  }
  flags.push(["--url", "http://${ENDPOINT}"]);
  if (b.streaming) flags.push(["--streaming", null]);
  flags.push(
    ["--random-seed", num(b.random_seed)],
    ["--ui", "dashboard"],
    ["--artifact-dir", "${ARTIFACT_DIR}"],
    ["--workers-max", num(d.perf.workers_max)],
    ["--request-timeout-seconds", num(b.request_timeout_s)],
    ["--profile-export-level", "records"],
    ["--record-processors", num(d.perf.record_processors)],
  );
  if (b.prompt_block_size !== AIPERF_DEFAULT_BLOCK_SIZE)
    flags.push(["--prompt-input-tokens-block-size", num(b.prompt_block_size)]);
  const slos = Object.entries(b.goodput).map(([tag, v]) =>
    SLO_ENV[tag] ? `${tag}:\${${SLO_ENV[tag]}}` : `${tag}:${num(v as number)}`,
  );
  if (slos.length > 0) flags.push(["--goodput", slos.join(" ")]);
  return flags;
}

function script(recipe: Recipe, armName: string, dgd: string, d: DeployConfig): string {
  const warmup = warmupFlags(recipe, d);
  const goodput = recipe.benchmark.goodput as Record<string, number>;
  const inputConfig = [
    `--arg deployment ${dgd}`,
    `--arg arm ${armName}`,
    `--arg recipe ${recipe.name}`,
    '--arg model "${TARGET_MODEL}"',
    '--arg trace_file "${TRACE_FILE}"',
    '--argjson trace_requests "${TRACE_REQUESTS}"',
    `--argjson ttft_threshold_ms ${goodput.time_to_first_token === undefined ? "null" : '"${TTFT_THRESHOLD_MS}"'}`,
    `--argjson itl_threshold_ms ${goodput.inter_token_latency === undefined ? "null" : '"${ITL_THRESHOLD_MS}"'}`,
    '--arg endpoint "${ENDPOINT}"',
  ];
  const lines = [
    "set -euo pipefail",
    "ulimit -n 600000",
    "# AIPerf's workers watch many files; a node's default inotify limits are too low (best effort).",
    "sysctl -w fs.inotify.max_user_watches=1048576 fs.inotify.max_user_instances=8192 >/dev/null 2>&1 || true",
    "apt-get update -qq",
    "# build-essential: aiperf's crick dependency builds from source on arm64.",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl jq procps git build-essential >/dev/null",
    `pip install --no-cache-dir "aiperf==${d.perf.aiperf_version}"`,
    'sysctl -w net.ipv4.ip_local_port_range="1024 65000"',
    "export COLUMNS=200",
    "EPOCH=$(date +%s)",
    'until curl -sf "http://${ENDPOINT}/v1/models" | jq -e --arg m "${TARGET_MODEL}" \'.data[] | select(.id == $m)\' >/dev/null; do',
    '  echo "waiting for ${TARGET_MODEL} at ${ENDPOINT}"',
    "  sleep 5",
    "done",
    'RUN_DIR="${ROOT_ARTIFACT_DIR}/${EPOCH}_${JOB_NAME}"',
    'mkdir -p "${RUN_DIR}"',
    'if [ ! -f "${TRACE_FILE}" ]; then echo "trace ${TRACE_FILE} is not on the volume" >&2; exit 1; fi',
    'TRACE_REQUESTS=$(wc -l < "${TRACE_FILE}")',
    `jq -n ${inputConfig.join(" ")} '$ARGS.named' > "\${RUN_DIR}/input_config.json"`,
    'ARTIFACT_DIR="${RUN_DIR}/$(basename "${TRACE_FILE}" .jsonl)"',
    "SERVER_METRICS=()",
    'for url in ${AIPERF_SERVER_METRICS_URLS//,/ }; do SERVER_METRICS+=(--server-metrics "${url}"); done',
    ...(warmup
      ? [
          "# Warm-up: its artifacts stay in the pod (./artifacts), not on the volume.",
          formatAiperfCommand(warmup),
        ]
      : []),
    "set +e",
    formatAiperfCommand(replayFlags(recipe, d), ['"${SERVER_METRICS[@]}"']),
    "RC=$?",
    "set -e",
    'echo "results in ${ARTIFACT_DIR} (exit ${RC})"',
    'ls -la "${ARTIFACT_DIR}" || true',
    'exit "${RC}"',
  ];
  return `${lines.join("\n")}\n`;
}

export function renderPerfJob(recipe: Recipe, armName: string, dgd: string, d: DeployConfig): Manifest {
  const name = perfJobName(dgd);
  const goodput = recipe.benchmark.goodput as Record<string, number>;
  const env: Manifest[] = [
    { name: "TARGET_MODEL", value: recipe.model.served_model_name },
    { name: "ENDPOINT", value: `${frontendHost(dgd)}:${FRONTEND_PORT}` },
    { name: "TRACE_FILE", value: traceFilePath(recipe, d) },
    ...Object.entries(SLO_ENV)
      .filter(([tag]) => goodput[tag] !== undefined)
      .map(([tag, envName]) => ({ name: envName, value: num(goodput[tag]!) })),
    { name: "AIPERF_HTTP_CONNECTION_LIMIT", value: num(d.perf.http_connection_limit) },
    { name: "AIPERF_HTTP_SO_RCVTIMEO", value: num(d.perf.http_so_rcvtimeo_s) },
    ...(d.perf.server_metrics_urls.length > 0
      ? [{ name: "AIPERF_SERVER_METRICS_URLS", value: d.perf.server_metrics_urls.join(",") }]
      : []),
    {
      name: "JOB_NAME",
      valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.labels['job-name']" } },
    },
    { name: "ROOT_ARTIFACT_DIR", value: PERF_ROOT },
    { name: "HF_HOME", value: MODEL_CACHE_MOUNT },
    { name: "PYTHONUNBUFFERED", value: "1" },
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, ...(d.namespace ? { namespace: d.namespace } : {}) },
    spec: {
      backoffLimit: 1,
      completions: 1,
      parallelism: 1,
      template: {
        metadata: { labels: { app: name } },
        spec: {
          // Off every node of the deployment under test, so the load generator does not steal its CPUs.
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: { matchExpressions: [{ key: DGD_LABEL, operator: "In", values: [dgd] }] },
                  topologyKey: "kubernetes.io/hostname",
                },
              ],
            },
          },
          restartPolicy: "Never",
          containers: [
            {
              name: "perf",
              image: d.images.perf,
              imagePullPolicy: "IfNotPresent",
              // The script raises sysctl limits.
              securityContext: { privileged: true },
              workingDir: "/workspace",
              command: ["/bin/bash", "-c", script(recipe, armName, dgd, d)],
              env,
              volumeMounts: [{ name: "model-cache", mountPath: MODEL_CACHE_MOUNT }],
            },
          ],
          volumes: [{ name: "model-cache", persistentVolumeClaim: { claimName: d.model_cache.claim_name } }],
        },
      },
    },
  };
}
