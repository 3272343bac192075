import { basename } from "node:path";
import { Document, parse } from "yaml";
import { ServelabError } from "../errors.ts";
import {
  DEFAULT_RUNTIME_IMAGES,
  type DynamoVersion,
  deploySchema,
  deploySettings,
} from "../recipe/deploy-schema.ts";
import { parseRecipe } from "../recipe/load.ts";
import type { GroupRole, Recipe } from "../recipe/schema.ts";
import { DATASETS } from "../trace/datasets.ts";
import { aiperfCommands, flagValue } from "./aiperf-command.ts";
import { docKind, docName, type ManifestDoc } from "./manifest-doc.ts";
import { channelTemplateName, ENGINE_CONFIG_KEY, frontendHost, SERVICE_KEY } from "./names.ts";
import { traceFilePath } from "./perf-job.ts";

/*
 * A Dynamo recipe directory (DynamoGraphDeployments with their engine ConfigMaps, the perf Jobs running AIPerf,
 * the model-cache objects) read back into a servelab recipe: arms with their routers and worker groups, engine
 * blocks as written, the trace and benchmark settings from the perf Job's AIPerf command, and a `deploy:` section
 * with what differs from the defaults. What the manifests cannot say (the model's architecture, the hardware's
 * figures) comes from a template recipe, and the hardware is marked as a guess.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export interface ImportInput {
  docs: readonly ManifestDoc[];
  /** Markdown next to the manifests (the recipe README), searched for the `datagen synthesize` command. */
  readme?: string;
  /** Recipes describing models (architecture, sizes) and, as a starting guess, hardware; one must serve the model. */
  templates: readonly Recipe[];
  name: string;
  description?: string;
}

export interface ImportResult {
  /** The recipe as data, before the schema fills defaults. */
  recipe: Obj;
  yaml: string;
  /** What could not be carried over, or was guessed. */
  notes: string[];
}

const fail = (message: string, details: string[] = []) =>
  new ServelabError("DEPLOY_IMPORT", message, details);

function argMap(args: readonly unknown[]): { values: Map<string, string | null>; order: string[] } {
  const values = new Map<string, string | null>();
  const order: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = String(args[i]);
    if (!a.startsWith("--")) continue;
    const next = args[i + 1];
    const value = next !== undefined && !String(next).startsWith("--") ? String(next) : null;
    values.set(a, value);
    order.push(a);
    if (value !== null) i++;
  }
  return { values, order };
}

interface Worker {
  role: GroupRole;
  key: string;
  svc: Obj;
  main: Obj;
  pod: Obj;
}

const ROLE_OF_SUBTYPE: Record<string, GroupRole> = { prefill: "prefill", decode: "decode" };

/** The env a worker sets beyond what the renderer always writes (POD_UID, HF_HOME, TRITON_CACHE_DIR). */
function extraEnv(main: Obj, notes: string[], where: string): [string, string][] {
  const out: [string, string][] = [];
  for (const e of list(main.env).filter(isObj)) {
    const name = str(e.name);
    if (!name || name === "POD_UID" || name === "HF_HOME" || name === "TRITON_CACHE_DIR") continue;
    if (typeof e.value !== "string") {
      notes.push(`${where}: env ${name} is not a plain string value; not imported`);
      continue;
    }
    out.push([name, e.value]);
  }
  return out;
}

/** Entries shared by every list (same name and value), in the first list's order. */
function common(lists: readonly [string, string][][]): [string, string][] {
  if (lists.length === 0) return [];
  return lists[0]!.filter(([k, v]) => lists.every((l) => l.some(([k2, v2]) => k2 === k && v2 === v)));
}

function routerOf(args: readonly unknown[], where: string, notes: string[]): Obj {
  const { values, order } = argMap(args);
  const mode = values.get("--router-mode") ?? "round-robin";
  const known = new Set(["--router-mode", "--request-plane"]);
  const router: Obj = { mode };
  if (mode === "kv") {
    const kv: [string, string, (v: string | null) => unknown][] = [
      ["--kv-overlap-score-weight", "overlap_score_weight", Number],
      ["--router-temperature", "router_temperature", Number],
      ["--no-kv-events", "use_kv_events", () => false],
      ["--router-replica-sync", "router_replica_sync", () => true],
      ["--router-reset-states", "router_reset_states", () => true],
      ["--router-snapshot-threshold", "router_snapshot_threshold", Number],
    ];
    for (const [flag, key, conv] of kv)
      if (values.has(flag)) {
        router[key] = conv(values.get(flag) ?? null);
        known.add(flag);
      }
  }
  for (const flag of order)
    if (!known.has(flag))
      notes.push(`${where}: frontend flag ${flag} is not modelled for a ${mode} router; dropped`);
  return router;
}

function engineOf(w: Worker, configMaps: readonly ManifestDoc[], dgdDoc: ManifestDoc, where: string): Obj {
  const { values } = argMap(list(w.main.args));
  const path = values.get("--extra-engine-args");
  if (!path) throw fail(`${where}: the worker passes no --extra-engine-args file`);
  const cut = path.lastIndexOf("/");
  const dir = path.slice(0, cut);
  const key = path.slice(cut + 1);
  const mount = list(w.main.volumeMounts)
    .filter(isObj)
    .find((m) => str(m.mountPath)?.replace(/\/+$/, "") === dir);
  const volume = list(w.pod.volumes)
    .filter(isObj)
    .find((v) => v.name === mount?.name);
  const cmName = str(obj(volume?.configMap).name);
  const cm =
    configMaps.find((c) => docName(c) === cmName && c.file === dgdDoc.file) ??
    configMaps.find((c) => docName(c) === cmName);
  const text = obj(obj(cm?.value).data)[key];
  if (typeof text !== "string")
    throw fail(`${where}: --extra-engine-args ${path} is not a key of a ConfigMap mounted at ${dir}`);
  const engine = parse(text) as unknown;
  if (!isObj(engine)) throw fail(`${where}: ${cmName}/${key} is not a YAML mapping`);
  return engine;
}

function groupOf(w: Worker, engine: Obj, where: string, notes: string[], deploy: Obj): Obj {
  const { values, order } = argMap(list(w.main.args));
  const nodes = Number(obj(w.svc.multinode).nodeCount ?? 1);
  const perNode = Number(str(obj(obj(w.svc.resources).limits).gpu) ?? "1");
  const group: Obj = {
    replicas: Number(w.svc.replicas ?? 1),
    gpus_per_worker: nodes * perNode,
    nodes_per_worker: nodes,
  };
  const block = values.get("--kv-block-size");
  if (block) group.kv_block_size = Number(block);
  if (values.has("--publish-events-and-metrics")) group.publish_events_and_metrics = true;
  const mode = values.get("--disaggregation-mode");
  if (mode && mode !== (w.role === "workers" ? "prefill_and_decode" : w.role))
    notes.push(
      `${where}: --disaggregation-mode ${mode} disagrees with subComponentType; the group is ${w.role}`,
    );
  const plane = values.get("--request-plane");
  if (plane) deploy.request_plane = plane;
  const known = new Set([
    "--model-path",
    "--served-model-name",
    "--extra-engine-args",
    "--kv-block-size",
    "--publish-events-and-metrics",
    "--disaggregation-mode",
    "--request-plane",
  ]);
  for (const flag of order)
    if (!known.has(flag)) notes.push(`${where}: worker flag ${flag} is not modelled; dropped`);
  group.engine = engine;
  return group;
}

const SYNTH_NAME =
  /^(.*)_synth_([\d.]+)x(\d+)\+([\d.]+)_speedup([\d.]+)(?:_maxisl(\d+))?(?:_seed(\d+))?\.jsonl$/;

/** The recipe's trace section from the file the perf Job replays (datagen's output name) and the README. */
function traceOf(traceFile: string, readme: string | undefined, notes: string[]): Obj {
  const file = basename(traceFile);
  const m = SYNTH_NAME.exec(file);
  const stem = m ? m[1]! : file.replace(/\.jsonl$/, "");
  const dataset = Object.entries(DATASETS).find(
    ([, e]) => basename(e.relativePath).replace(/\.jsonl$/, "") === stem,
  )?.[0];
  const trace: Obj = { source: dataset ?? `${stem}.jsonl` };
  if (!dataset)
    notes.push(`trace: ${stem}.jsonl is not a registered dataset; put the file beside the recipe`);
  if (!m) return trace;
  const synthesis: Obj = {
    prefix_len_multiplier: Number(m[2]),
    prefix_root_multiplier: Number(m[3]),
    prompt_len_multiplier: Number(m[4]),
    speedup_ratio: Number(m[5]),
    ...(m[6] ? { max_isl: Number(m[6]) } : {}),
  };
  // The file name has no request count; the README's datagen command does.
  const datagen = /datagen\s+synthesize((?:\\\n|[^\n])*)/.exec(readme ?? "")?.[1]?.replace(/\\\n/g, " ");
  const count = datagen ? /--num-requests\s+(\d+)/.exec(datagen)?.[1] : undefined;
  if (count) synthesis.num_requests = Number(count);
  else
    notes.push(
      "trace: the request count of the synthesized trace is not stated; the synthesizer's default is used",
    );
  trace.synthesis = synthesis;
  if (m[7]) trace.seed = Number(m[7]);
  else
    notes.push(
      "trace: the upstream trace was synthesized unseeded; servelab's seed is a choice, not the upstream one",
    );
  return trace;
}

interface PerfSettings {
  benchmark: Obj;
  perf: Obj;
  perfImage?: string;
  traceFile?: string;
}

function perfOf(job: ManifestDoc, notes: string[]): PerfSettings {
  const where = `${job.file} Job/${docName(job)}`;
  const container = obj(list(obj(obj(obj(obj(job.value).spec).template).spec).containers)[0]);
  const env: Record<string, string> = {};
  for (const e of list(container.env).filter(isObj))
    if (typeof e.value === "string") env[String(e.name)] = e.value;
  const script = [...list(container.command), ...list(container.args)].map(String).join("\n");
  const commands = aiperfCommands(script, env);
  const replay = commands.find((c) => flagValue(c, "--input-file") !== undefined);
  if (!replay) throw fail(`${where}: no \`aiperf profile --input-file …\` trace replay in the Job's script`);
  const warm = commands.find((c) => c !== replay && flagValue(c, "--input-file") === undefined);
  const benchmark: Obj = {};
  const n = (v: string | null | undefined) => (v === undefined || v === null ? undefined : Number(v));
  if (flagValue(replay, "--fixed-schedule") !== undefined) {
    benchmark.mode = "fixed_schedule";
    if (flagValue(replay, "--fixed-schedule-auto-offset") !== undefined) benchmark.auto_offset = true;
    const start = n(flagValue(replay, "--fixed-schedule-start-offset"));
    const end = n(flagValue(replay, "--fixed-schedule-end-offset"));
    if (start !== undefined) benchmark.start_offset_ms = start;
    if (end !== undefined) benchmark.end_offset_ms = end;
  } else if (flagValue(replay, "--request-rate") !== undefined) {
    benchmark.mode = "request_rate";
    benchmark.request_rate = n(flagValue(replay, "--request-rate"));
    const rm = flagValue(replay, "--request-rate-mode");
    if (rm) benchmark.request_rate_mode = rm;
  } else if (flagValue(replay, "--concurrency") !== undefined) {
    benchmark.mode = "concurrency";
    benchmark.concurrency = n(flagValue(replay, "--concurrency"));
  } else {
    notes.push(
      `${where}: the replay sets no schedule (fixed schedule, rate or concurrency); imported as a fixed schedule`,
    );
    benchmark.mode = "fixed_schedule";
  }
  if (benchmark.mode !== "fixed_schedule") {
    const c = n(flagValue(replay, "--concurrency"));
    const rc = n(flagValue(replay, "--request-count"));
    if (c !== undefined && benchmark.mode === "request_rate") benchmark.concurrency = c;
    if (rc !== undefined) benchmark.request_count = rc;
  }
  const goodput = flagValue(replay, "--goodput");
  if (goodput) {
    const slos: Obj = {};
    for (const part of goodput.trim().split(/\s+/)) {
      const [tag, value] = part.split(":");
      if (tag && value !== undefined && Number.isFinite(Number(value))) slos[tag] = Number(value);
      else notes.push(`${where}: goodput term ${part} is not tag:number; dropped`);
    }
    benchmark.goodput = slos;
  }
  const block = n(flagValue(replay, "--prompt-input-tokens-block-size"));
  benchmark.prompt_block_size = block ?? 512;
  benchmark.streaming = flagValue(replay, "--streaming") !== undefined;
  const seed = n(flagValue(replay, "--random-seed"));
  if (seed !== undefined) benchmark.random_seed = seed;
  const timeout = n(flagValue(replay, "--request-timeout-seconds"));
  if (timeout !== undefined) benchmark.request_timeout_s = timeout;
  const perf: Obj = {};
  const version = /aiperf==([\w.+-]+)/.exec(script)?.[1];
  if (version) perf.aiperf_version = version;
  const workersMax = n(flagValue(replay, "--workers-max"));
  if (workersMax !== undefined) perf.workers_max = workersMax;
  const processors = n(flagValue(replay, "--record-processors"));
  if (processors !== undefined) perf.record_processors = processors;
  if (env.AIPERF_HTTP_CONNECTION_LIMIT) perf.http_connection_limit = Number(env.AIPERF_HTTP_CONNECTION_LIMIT);
  if (env.AIPERF_HTTP_SO_RCVTIMEO) perf.http_so_rcvtimeo_s = Number(env.AIPERF_HTTP_SO_RCVTIMEO);
  if (env.AIPERF_SERVER_METRICS_URLS)
    perf.server_metrics_urls = env.AIPERF_SERVER_METRICS_URLS.split(",").filter((u) => u !== "");
  perf.warmup = warm
    ? {
        input_tokens: n(flagValue(warm, "--synthetic-input-tokens-mean")) ?? 10000,
        output_tokens: n(flagValue(warm, "--output-tokens-mean")) ?? 200,
        concurrency: n(flagValue(warm, "--concurrency")) ?? 4,
        request_count: n(flagValue(warm, "--request-count")) ?? 10,
      }
    : null;
  const image = str(container.image);
  const traceFile = flagValue(replay, "--input-file") ?? env.TRACE_FILE;
  return { benchmark, perf, ...(image ? { perfImage: image } : {}), ...(traceFile ? { traceFile } : {}) };
}

/** Dynamo's release line from the runtime image's tag (`…:1.3.1` → 1.3). */
function versionOfImage(image: string, notes: string[]): DynamoVersion {
  const tag = /:(\d+)\.(\d+)/.exec(image);
  const line = tag ? `${tag[1]}.${tag[2]}` : "";
  if (line === "1.0" || line === "1.3") return line;
  notes.push(`deploy: runtime image ${image} is neither Dynamo 1.0 nor 1.3; the manifests target 1.3`);
  return "1.3";
}

/** The deploy keys whose value differs from the defaults; a subsection is written whole when any part differs. */
function changedDeploy(deploy: Obj): Obj {
  const defaults = deploySchema.parse({}) as unknown as Obj;
  const parsed = deploySchema.parse(deploy) as unknown as Obj;
  const out: Obj = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (JSON.stringify(v) === JSON.stringify(defaults[k])) continue;
    out[k] = isObj(v) && isObj(defaults[k]) ? changedSection(v, defaults[k] as Obj) : v;
  }
  return out;
}

function changedSection(v: Obj, d: Obj): Obj {
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (JSON.stringify(x) !== JSON.stringify(d[k])) out[k] = x;
  return out;
}

function longestDashSuffix(names: readonly string[]): string {
  if (names.length < 2) return "";
  let suffix = names[0]!;
  for (const n of names) while (!n.endsWith(suffix)) suffix = suffix.slice(1);
  const dash = suffix.indexOf("-");
  if (dash < 0) return "";
  suffix = suffix.slice(dash);
  // Every arm keeps a non-empty name.
  return names.every((n) => n.length > suffix.length) ? suffix : "";
}

export function importDynamoRecipe(input: ImportInput): ImportResult {
  const notes: string[] = [];
  const graphs = input.docs.filter((d) => docKind(d) === "DynamoGraphDeployment");
  if (graphs.length === 0) throw fail("no DynamoGraphDeployment among the manifests");
  const configMaps = input.docs.filter((d) => docKind(d) === "ConfigMap");
  const jobs = input.docs.filter((d) => docKind(d) === "Job");
  const dgdNames = graphs.map((g) => docName(g) ?? "");
  const suffix = longestDashSuffix(dgdNames);
  const deploy: Obj = { name_suffix: suffix };
  const arms: Obj = {};
  const workers: { arm: string; w: Worker }[] = [];
  let modelPath: string | undefined;
  let servedName: string | undefined;
  let image: string | undefined;
  const perfByArm = new Map<string, PerfSettings>();
  for (const g of graphs) {
    const dgd = docName(g) ?? "";
    const armName = dgd.slice(0, dgd.length - suffix.length);
    const services = obj(obj(obj(g.value).spec).services);
    let router: Obj | undefined;
    const arm: Obj = {};
    for (const [key, raw] of Object.entries(services)) {
      const svc = obj(raw);
      const pod = obj(svc.extraPodSpec);
      const main = obj(pod.mainContainer);
      const where = `${g.file} ${dgd}/${key}`;
      const img = str(main.image);
      if (img && image && img !== image)
        notes.push(`${where}: image ${img} differs from ${image}; one image is used for all`);
      image ??= img;
      if (svc.componentType === "frontend") {
        router = routerOf(list(main.args), where, notes);
        continue;
      }
      if (svc.componentType !== "worker") {
        notes.push(`${where}: componentType ${String(svc.componentType)} is not modelled; dropped`);
        continue;
      }
      const sub = str(svc.subComponentType);
      const role: GroupRole = sub ? (ROLE_OF_SUBTYPE[sub] ?? "workers") : "workers";
      if (key !== SERVICE_KEY[role]) notes.push(`${where}: rendered as service ${SERVICE_KEY[role]}`);
      const w: Worker = { role, key, svc, main, pod };
      const { values } = argMap(list(main.args));
      modelPath ??= values.get("--model-path") ?? undefined;
      servedName ??= values.get("--served-model-name") ?? undefined;
      const engine = engineOf(w, configMaps, g, where);
      const engineKey = (values.get("--extra-engine-args") ?? "").split("/").pop();
      if (engineKey !== ENGINE_CONFIG_KEY[role])
        notes.push(`${where}: engine file ${engineKey} is rendered as ${ENGINE_CONFIG_KEY[role]}`);
      arm[role] = groupOf(w, engine, where, notes, deploy);
      workers.push({ arm: armName, w });
    }
    if (!router) throw fail(`${g.file} ${dgd}: no frontend service`);
    const perfJob = jobs.find((j) =>
      list(obj(obj(obj(obj(j.value).spec).template).spec).containers)
        .filter(isObj)
        .some((c) =>
          list(c.env).some(
            (e) => isObj(e) && e.name === "ENDPOINT" && str(e.value)?.split(":")[0] === frontendHost(dgd),
          ),
        ),
    );
    if (perfJob) perfByArm.set(armName, perfOf(perfJob, notes));
    else notes.push(`${dgd}: no perf Job targets ${frontendHost(dgd)}; benchmark settings from another arm`);
    arms[armName] = { router, ...arm };
  }
  if (!modelPath) throw fail("no worker passes --model-path");
  const template = input.templates.find((t) => t.model.model_path === modelPath);
  if (!template)
    throw fail(
      `the manifests serve ${modelPath}, and no template recipe describes that model's architecture`,
      [
        `recipes describing: ${input.templates.map((t) => t.model.model_path).join(", ") || "(none)"}`,
        "pass --model-from with a recipe whose model section describes this model",
      ],
    );
  // Engine pods: what all share is recipe-wide; what one group adds is that group's.
  const envs = workers.map(({ arm, w }) => extraEnv(w.main, notes, `${arm}/${w.key}`));
  const allEnv = common(envs);
  const env: Obj = { all: Object.fromEntries(allEnv) };
  const tolerations: Obj = { all: [] };
  workers.forEach(({ w }, i) => {
    const own = envs[i]!.filter(([k, v]) => !allEnv.some(([k2, v2]) => k === k2 && v === v2));
    const prev = env[w.role] as Obj | undefined;
    if (prev && JSON.stringify(prev) !== JSON.stringify(Object.fromEntries(own)))
      notes.push(`env of the ${w.role} groups differs between arms; the first arm's is used`);
    env[w.role] ??= Object.fromEntries(own);
    const tol = list(w.pod.tolerations);
    if (tolerations[w.role] !== undefined && JSON.stringify(tolerations[w.role]) !== JSON.stringify(tol))
      notes.push(`tolerations of the ${w.role} groups differ between arms; the first arm's are used`);
    tolerations[w.role] ??= tol;
  });
  for (const role of ["workers", "prefill", "decode"]) {
    env[role] ??= {};
    tolerations[role] ??= [];
  }
  deploy.env = env;
  deploy.tolerations = tolerations;
  const first = workers[0]?.w;
  if (first) {
    const selector = obj(first.pod.nodeSelector);
    deploy.node_selector = selector;
    const secret = str(first.svc.envFromSecret);
    if (secret) deploy.hf_token_secret = secret;
    const probe = obj(first.main.startupProbe);
    deploy.startup_probe = {
      ...(probe.periodSeconds !== undefined ? { period_seconds: probe.periodSeconds } : {}),
      ...(probe.failureThreshold !== undefined ? { failure_threshold: probe.failureThreshold } : {}),
      ...(probe.timeoutSeconds !== undefined ? { timeout_seconds: probe.timeoutSeconds } : {}),
    };
    const template = str(obj(list(first.pod.resourceClaims)[0]).resourceClaimTemplateName);
    const cdDoc = input.docs.find((d) => docKind(d) === "ComputeDomain");
    const cdName = docName(cdDoc ?? { file: "", index: 0, line: 0, value: {} });
    if (cdName) {
      deploy.compute_domain = { name: cdName, num_nodes: Number(obj(obj(cdDoc!.value).spec).numNodes ?? 0) };
      if (template && template !== channelTemplateName(cdName))
        notes.push(`resourceClaimTemplateName ${template} is rendered as ${channelTemplateName(cdName)}`);
    } else if (template?.endsWith("-channel"))
      deploy.compute_domain = { name: template.slice(0, -"-channel".length) };
    const claim = str(
      obj(
        list(first.pod.volumes)
          .filter(isObj)
          .find((v) => isObj(v.persistentVolumeClaim))?.persistentVolumeClaim,
      ).claimName,
    );
    const pvc = input.docs.find((d) => docKind(d) === "PersistentVolumeClaim");
    const pvcSpec = obj(obj(pvc?.value).spec);
    deploy.model_cache = {
      ...(claim ? { claim_name: claim } : {}),
      ...(str(obj(obj(pvcSpec.resources).requests).storage)
        ? { size: str(obj(obj(pvcSpec.resources).requests).storage) }
        : {}),
      ...(str(list(pvcSpec.accessModes)[0]) ? { access_mode: str(list(pvcSpec.accessModes)[0]) } : {}),
    };
    if (str(pvcSpec.storageClassName)) deploy.storage_class = str(pvcSpec.storageClassName);
  }
  if (image) {
    const version = versionOfImage(image, notes);
    deploy.dynamo_version = version;
    if (image !== DEFAULT_RUNTIME_IMAGES[version]) deploy.images = { runtime: image };
  }
  const download = jobs.find((j) => docName(j) === "model-download");
  if (download) {
    const c = obj(list(obj(obj(obj(obj(download.value).spec).template).spec).containers)[0]);
    const script = list(c.args).map(String).join("\n");
    const hub = /huggingface_hub==([\w.+-]+)/.exec(script)?.[1];
    if (hub) deploy.huggingface_hub_version = hub;
    const img = str(c.image);
    if (img) deploy.images = { ...obj(deploy.images), model_download: img };
  }
  const perfs = [...perfByArm.values()];
  const perf0 = perfs[0];
  if (!perf0) throw fail("no perf Job (`aiperf profile --input-file …`) targets any of the deployments");
  for (const p of perfs.slice(1))
    if (
      JSON.stringify(p.benchmark) !== JSON.stringify(perf0.benchmark) ||
      JSON.stringify(p.perf) !== JSON.stringify(perf0.perf)
    )
      notes.push("the perf Jobs' AIPerf settings differ between arms; the first arm's are used");
  if (perf0.perfImage) deploy.images = { ...obj(deploy.images), perf: perf0.perfImage };
  const trace = traceOf(perf0.traceFile ?? "", input.readme, notes);
  const perf: Obj = { ...perf0.perf };
  deploy.perf = perf;
  const hardware = hardwareGuess(template, workers, notes);
  const recipe: Obj = {
    name: input.name,
    ...(input.description ? { description: input.description } : {}),
    model: {
      ...(template.model as unknown as Obj),
      model_path: modelPath,
      served_model_name: servedName ?? modelPath,
    },
    hardware,
    trace,
    benchmark: perf0.benchmark,
    arms,
    deploy,
  };
  recipe.deploy = changedDeploy(deploy);
  // The trace path on the volume is written only when it is not the one the recipe's trace implies.
  const parsed = checked(recipe, notes);
  if (perf0.traceFile && traceFilePath(parsed, deploySettings(parsed.deploy)) !== perf0.traceFile) {
    perf.trace_file = perf0.traceFile;
    recipe.deploy = changedDeploy(deploy);
  }
  const yaml = recipeYaml(recipe, notes);
  parseRecipe(yaml, "the imported recipe");
  return { recipe, yaml, notes };
}

/** The recipe through the schema; a failure is a bug in the import or a manifest the schema rejects. */
function checked(recipe: Obj, notes: readonly string[]): Recipe {
  return parseRecipe(recipeYaml(recipe, notes), "the imported recipe");
}

/** The template's hardware with the node shape the manifests imply; GPU figures stay the template's. */
function hardwareGuess(
  template: Recipe,
  workers: readonly { arm: string; w: Worker }[],
  notes: string[],
): Obj {
  const perNode = Math.max(
    1,
    ...workers.map(({ w }) => Number(str(obj(obj(w.svc.resources).limits).gpu) ?? "1")),
  );
  const nodesByArm = new Map<string, number>();
  for (const { arm, w } of workers) {
    const nodes = Number(w.svc.replicas ?? 1) * Number(obj(w.svc.multinode).nodeCount ?? 1);
    nodesByArm.set(arm, (nodesByArm.get(arm) ?? 0) + nodes);
  }
  const nodes = Math.max(1, ...nodesByArm.values());
  const mnnvl = workers.some(({ w }) =>
    list(w.main.env).some((e) => isObj(e) && e.name === "NCCL_MNNVL_ENABLE" && e.value === "1"),
  );
  const arm64 = workers.some(({ w }) => obj(w.pod.nodeSelector)["kubernetes.io/arch"] === "arm64");
  const t = template.hardware;
  const { total_gpus: _, ...rest } = t;
  notes.push(
    `hardware: a guess, not stated by the manifests: ${nodes} nodes × ${perNode} GPUs from the workers' layout` +
      `${arm64 && mnnvl ? " (arm64 nodes with multi-node NVLink, as on GB200 NVL72)" : ""}; GPU figures from the template recipe's ${t.gpu}`,
  );
  return { ...rest, gpus_per_node: perNode, nodes, nvlink: { ...t.nvlink, mnnvl: t.nvlink.mnnvl || mnnvl } };
}

function recipeYaml(recipe: Obj, notes: readonly string[]): string {
  const doc = new Document(recipe, { aliasDuplicateObjects: false });
  doc.commentBefore = [
    ` Imported by \`servelab recipe import\` from a Dynamo recipe directory.`,
    ...notes.map((n) => ` note: ${n}`),
  ].join("\n");
  const hw = doc.get("hardware", true) as { commentBefore?: string } | undefined;
  if (hw) hw.commentBefore = " A guess from the manifests' node layout; check it against the cluster.";
  return doc.toString({ lineWidth: 0 });
}
