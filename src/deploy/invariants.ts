import { parse } from "yaml";
import { docKind, docLabel, docName, type ManifestDoc, type ManifestIssue } from "./manifest-doc.ts";
import { channelTemplateName, GROVE_NAME_BUDGET, groveNameLength } from "./names.ts";

/*
 * Rules that hold between fields or objects, which no OpenAPI schema can state: GPU totals, the KV block size the
 * router hashes with against the engine's, claims against the ComputeDomain, engine files against the ConfigMap,
 * volumes against the PVC, the perf Job against the deployment it measures, and name budgets. Each reads fields
 * defensively: a document that breaks its schema is reported there, and here only what can still be checked.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** The value after `flag` in an argument list. */
function argValue(args: readonly unknown[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? str(args[i + 1]) : undefined;
}

interface Finder {
  issues: ManifestIssue[];
  add(d: ManifestDoc, path: string, rule: string, message: string): void;
}

function finder(): Finder {
  const issues: ManifestIssue[] = [];
  return { issues, add: (d, path, rule, message) => issues.push({ doc: docLabel(d), path, rule, message }) };
}

const ofKind = (docs: readonly ManifestDoc[], kind: string) => docs.filter((d) => docKind(d) === kind);

function podVolumes(spec: Obj): Obj[] {
  return list(spec.volumes).filter(isObj);
}

/** Each worker's engine file, as the ConfigMap mounted at its directory holds it. */
function engineFileOf(
  container: Obj,
  spec: Obj,
  configMapOf: (name: string) => ManifestDoc | undefined,
): { key: string; dir: string; configMap?: ManifestDoc; volumeName?: string } | undefined {
  const path = argValue(list(container.args), "--extra-engine-args");
  if (!path) return undefined;
  const cut = path.lastIndexOf("/");
  const dir = path.slice(0, cut);
  const key = path.slice(cut + 1);
  const mount = list(container.volumeMounts)
    .filter(isObj)
    .find((m) => str(m.mountPath)?.replace(/\/+$/, "") === dir);
  const volume = podVolumes(spec).find((v) => v.name === mount?.name);
  const cmName = str(obj(volume?.configMap).name);
  const configMap = cmName === undefined ? undefined : configMapOf(cmName);
  return {
    key,
    dir,
    ...(configMap ? { configMap } : {}),
    ...(cmName ? { volumeName: cmName } : {}),
  };
}

function checkGraph(
  f: Finder,
  d: ManifestDoc,
  ctx: {
    configMapOf: (name: string) => ManifestDoc | undefined;
    referencedKeys: Map<ManifestDoc, Set<string>>;
    templates: ReadonlySet<string>;
    pvcs: ReadonlySet<string>;
    expectedGpus: number | undefined;
  },
): void {
  const dgd = docName(d) ?? "";
  const services = obj(obj(obj(d.value).spec).services);
  let gpus = 0;
  for (const [key, raw] of Object.entries(services)) {
    const svc = obj(raw);
    const at = `.spec.services.${key}`;
    const pod = obj(svc.extraPodSpec);
    const main = obj(pod.mainContainer);
    const nodeCount = Number(obj(svc.multinode).nodeCount ?? 1);
    const multinode = isObj(svc.multinode);
    const gpu = Number(str(obj(obj(svc.resources).limits).gpu) ?? 0);
    const replicas = Number(svc.replicas ?? 1);
    if (Number.isFinite(gpu * nodeCount * replicas)) gpus += gpu * nodeCount * replicas;
    if (groveNameLength(dgd, key, multinode) > GROVE_NAME_BUDGET)
      f.add(
        d,
        at,
        "invariant:name-length",
        `${dgd} + ${key.toLowerCase()} + its longest PodClique name is ${groveNameLength(dgd, key, multinode)} characters; Dynamo allows ${GROVE_NAME_BUDGET}`,
      );
    // Container claims must name a pod claim, and pod claims must come from the ComputeDomain's channel.
    const podClaims = list(pod.resourceClaims).filter(isObj);
    const podClaimNames = new Set(podClaims.map((c) => str(c.name)));
    list(obj(svc.resources).claims)
      .filter(isObj)
      .forEach((c, i) => {
        if (!podClaimNames.has(str(c.name)))
          f.add(
            d,
            `${at}.resources.claims[${i}].name`,
            "invariant:claim-name",
            `claim ${JSON.stringify(c.name)} is not one of extraPodSpec.resourceClaims (${[...podClaimNames].join(", ") || "none"})`,
          );
      });
    if (ctx.templates.size > 0)
      podClaims.forEach((c, i) => {
        const t = str(c.resourceClaimTemplateName);
        if (t !== undefined && !ctx.templates.has(t))
          f.add(
            d,
            `${at}.extraPodSpec.resourceClaims[${i}].resourceClaimTemplateName`,
            "invariant:claim-template",
            `${t} is not the channel template of the ComputeDomain (${[...ctx.templates].join(", ")})`,
          );
      });
    if (ctx.pvcs.size > 0)
      podVolumes(pod).forEach((v, i) => {
        const claim = str(obj(v.persistentVolumeClaim).claimName);
        if (claim !== undefined && !ctx.pvcs.has(claim))
          f.add(
            d,
            `${at}.extraPodSpec.volumes[${i}].persistentVolumeClaim.claimName`,
            "invariant:pvc-name",
            `no PersistentVolumeClaim ${claim} among the manifests (${[...ctx.pvcs].join(", ")})`,
          );
      });
    const engine = engineFileOf(main, pod, ctx.configMapOf);
    if (!engine) continue;
    const argsAt = `${at}.extraPodSpec.mainContainer.args`;
    if (!engine.volumeName) {
      f.add(
        d,
        argsAt,
        "invariant:engine-file",
        `no ConfigMap volume is mounted at ${engine.dir} for --extra-engine-args`,
      );
      continue;
    }
    if (!engine.configMap) {
      f.add(d, argsAt, "invariant:engine-file", `ConfigMap ${engine.volumeName} is not among the manifests`);
      continue;
    }
    const keys = ctx.referencedKeys.get(engine.configMap) ?? new Set<string>();
    keys.add(engine.key);
    ctx.referencedKeys.set(engine.configMap, keys);
    const text = obj(obj(engine.configMap.value).data)[engine.key];
    if (typeof text !== "string") {
      f.add(d, argsAt, "invariant:engine-file", `ConfigMap ${engine.volumeName} has no key ${engine.key}`);
      continue;
    }
    let cfg: Obj;
    try {
      cfg = obj(parse(text));
    } catch (e) {
      f.add(
        engine.configMap,
        `.data[${JSON.stringify(engine.key)}]`,
        "invariant:engine-yaml",
        (e as Error).message.split("\n")[0]!,
      );
      continue;
    }
    const blockSize = argValue(list(main.args), "--kv-block-size");
    const perBlock = obj(cfg.kv_cache_config).tokens_per_block;
    if (blockSize !== undefined && perBlock !== undefined && String(perBlock) !== blockSize)
      f.add(
        d,
        argsAt,
        "invariant:kv-block-size",
        `--kv-block-size ${blockSize} but ${engine.key} has kv_cache_config.tokens_per_block ${String(perBlock)}: the router would hash other blocks than the engine caches`,
      );
    const tp = cfg.tensor_parallel_size;
    if (typeof tp === "number" && gpu > 0 && tp !== gpu * nodeCount)
      f.add(
        d,
        `${at}.resources.limits.gpu`,
        "invariant:tensor-parallel",
        `${nodeCount} node(s) × ${gpu} GPUs = ${gpu * nodeCount}, but ${engine.key} has tensor_parallel_size ${tp}`,
      );
  }
  if (ctx.expectedGpus !== undefined && gpus !== ctx.expectedGpus)
    f.add(
      d,
      ".spec.services",
      "invariant:gpu-total",
      `the workers take ${gpus} GPUs (Σ replicas × nodeCount × gpu) but the recipe's arm has ${ctx.expectedGpus}`,
    );
}

function checkJob(
  f: Finder,
  d: ManifestDoc,
  pvcs: ReadonlySet<string>,
  graphs: ReadonlyMap<string, ManifestDoc>,
): void {
  const spec = obj(obj(obj(obj(d.value).spec).template).spec);
  if (pvcs.size > 0)
    podVolumes(spec).forEach((v, i) => {
      const claim = str(obj(v.persistentVolumeClaim).claimName);
      if (claim !== undefined && !pvcs.has(claim))
        f.add(
          d,
          `.spec.template.spec.volumes[${i}].persistentVolumeClaim.claimName`,
          "invariant:pvc-name",
          `no PersistentVolumeClaim ${claim} among the manifests (${[...pvcs].join(", ")})`,
        );
    });
  list(spec.containers)
    .filter(isObj)
    .forEach((c, ci) => {
      const env = list(c.env).filter(isObj);
      const seen = new Set<string>();
      env.forEach((e, i) => {
        const name = str(e.name);
        if (name === undefined) return;
        if (seen.has(name))
          f.add(
            d,
            `.spec.template.spec.containers[${ci}].env[${i}]`,
            "invariant:env-unique",
            `env ${name} is set twice`,
          );
        seen.add(name);
      });
      const endpoint = str(env.find((e) => e.name === "ENDPOINT")?.value);
      if (endpoint === undefined || graphs.size === 0) return;
      const host = endpoint.split(":")[0]!;
      const dgd = [...graphs.keys()].find((g) => `${g}-frontend` === host);
      const i = env.findIndex((e) => e.name === "ENDPOINT");
      if (!dgd) {
        f.add(
          d,
          `.spec.template.spec.containers[${ci}].env[${i}].value`,
          "invariant:endpoint",
          `${host} is not the frontend of a deployment among the manifests (${[...graphs.keys()].map((g) => `${g}-frontend`).join(", ")})`,
        );
        return;
      }
      const target = str(env.find((e) => e.name === "TARGET_MODEL")?.value);
      const services = obj(obj(obj(graphs.get(dgd)!.value).spec).services);
      const served = Object.values(services)
        .map((s) => argValue(list(obj(obj(obj(s).extraPodSpec).mainContainer).args), "--served-model-name"))
        .filter((s): s is string => s !== undefined);
      if (target !== undefined && served.length > 0 && !served.includes(target))
        f.add(
          d,
          `.spec.template.spec.containers[${ci}].env`,
          "invariant:target-model",
          `TARGET_MODEL ${target} is not what ${dgd}'s workers serve (${[...new Set(served)].join(", ")})`,
        );
    });
}

/** The cross-object rules over every document given (one arm, or a whole rendered directory). */
export function crossObjectIssues(
  docs: readonly ManifestDoc[],
  expectedGpus?: ReadonlyMap<string, number>,
): ManifestIssue[] {
  const f = finder();
  // Two documents of one kind and name replace each other on apply (upstream's shared engine ConfigMap does).
  const byId = new Map<string, ManifestDoc>();
  for (const d of docs) {
    const kind = docKind(d);
    const name = docName(d);
    if (kind === undefined || name === undefined) continue;
    const ns = str(obj(obj(d.value).metadata).namespace) ?? "";
    const id = `${kind}/${ns}/${name}`;
    const first = byId.get(id);
    if (first && JSON.stringify(first.value) !== JSON.stringify(d.value))
      f.add(
        d,
        ".metadata.name",
        "invariant:unique-name",
        `${kind} ${name} is also defined, differently, at ${docLabel(first)}: applying both keeps only the last`,
      );
    else byId.set(id, d);
  }
  // A namespace set on some objects only means `kubectl -n` puts the rest elsewhere (or refuses the mismatch).
  const nsOf = (d: ManifestDoc) => str(obj(obj(d.value).metadata).namespace) ?? "";
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(nsOf(d), (counts.get(nsOf(d)) ?? 0) + 1);
  if (counts.size > 1) {
    const usual = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const show = (ns: string) => (ns === "" ? "no namespace" : `namespace ${ns}`);
    for (const d of docs)
      if (nsOf(d) !== usual)
        f.add(
          d,
          ".metadata.namespace",
          "invariant:namespace",
          `${show(nsOf(d))}, but the other objects have ${show(usual)}: set it on all or none`,
        );
  }
  const configMaps = ofKind(docs, "ConfigMap");
  const pvcs = new Set(ofKind(docs, "PersistentVolumeClaim").map((d) => docName(d) ?? ""));
  const templates = new Set(
    ofKind(docs, "ComputeDomain")
      .map((d) => str(obj(obj(obj(obj(d.value).spec).channel).resourceClaimTemplate).name))
      .filter((n): n is string => n !== undefined),
  );
  for (const d of ofKind(docs, "ComputeDomain")) {
    const name = docName(d);
    const t = str(obj(obj(obj(obj(d.value).spec).channel).resourceClaimTemplate).name);
    if (name && t && t !== channelTemplateName(name))
      f.add(
        d,
        ".spec.channel.resourceClaimTemplate.name",
        "invariant:claim-template",
        `servelab names the channel template ${channelTemplateName(name)}; ${t} would not match rendered claims`,
      );
  }
  const graphs = new Map(ofKind(docs, "DynamoGraphDeployment").map((d) => [docName(d) ?? "", d]));
  const referencedKeys = new Map<ManifestDoc, Set<string>>();
  for (const d of graphs.values())
    checkGraph(f, d, {
      // A ConfigMap in the graph's own file first: with two of one name, that is the one applied with it.
      configMapOf: (name) =>
        configMaps.find((c) => docName(c) === name && c.file === d.file) ??
        configMaps.find((c) => docName(c) === name),
      referencedKeys,
      templates,
      pvcs,
      expectedGpus: expectedGpus?.get(docName(d) ?? "") ?? d.expectedGpus,
    });
  for (const d of ofKind(docs, "Job")) checkJob(f, d, pvcs, graphs);
  // An engine file no worker reads is a leftover (or a typo in an --extra-engine-args path).
  if (graphs.size > 0)
    for (const cm of configMaps) {
      const used = referencedKeys.get(cm) ?? new Set<string>();
      for (const key of Object.keys(obj(obj(cm.value).data)))
        if (!used.has(key))
          f.add(
            cm,
            `.data[${JSON.stringify(key)}]`,
            "invariant:configmap-key",
            `no worker's --extra-engine-args names ${key}`,
          );
    }
  return f.issues;
}
