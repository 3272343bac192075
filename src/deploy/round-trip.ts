import { parse } from "yaml";
import { aiperfCommands } from "./aiperf-command.ts";
import { pruneNulls } from "./crd-schema.ts";
import { docKind, docName, type ManifestDoc } from "./manifest-doc.ts";
import { configMapName } from "./names.ts";

/*
 * What "import then render reproduces the upstream manifests" means exactly: both sides are normalized by the rules
 * below, each naming an upstream field servelab does not reproduce byte for byte and why, and must then be equal
 * (mapping keys in any order, which YAML does not order anyway).
 */

export const UNREPRODUCED: readonly { field: string; why: string }[] = [
  {
    field: "null values (`extraPodSpec.containers: null`)",
    why: "an artifact of Go marshalling; the API server prunes nulls of non-nullable fields, so servelab omits them",
  },
  {
    field: "`metadata.namespace: your-namespace` on the ComputeDomain and the perf Jobs",
    why: "a placeholder on some objects only makes `kubectl -n` fail or split the objects; servelab sets a namespace on every object (--namespace) or on none",
  },
  {
    field:
      "the engine ConfigMap's name (`dsv32-trtllm-config` in both arms) and the workers' volume referring to it",
    why: "one name for both arms means applying the second arm replaces the first one's engine files; servelab names it `<deployment>-trtllm-config`",
  },
  {
    field: "the text of the engine YAMLs in the ConfigMap",
    why: "compared as parsed YAML: key order, comments and quoting are formatting",
  },
  {
    field: "the order of `env` entries",
    why: "env is a list-map keyed by name, so its order has no effect; servelab writes the shared entries first, then the group's",
  },
  {
    field: "the Frontend's `nodeSelector` (absent in the aggregated arm, arm64 in the disaggregated one)",
    why: "servelab applies the recipe's one node selector to every pod of every arm",
  },
  {
    field: "the perf Job's bash script",
    why: "servelab writes its own script with the same steps; compared are the AIPerf version it installs and the AIPerf commands it runs (flags in any order, env expanded). Upstream's agg and disagg scripts differ only in where `set +e` is; servelab's always records AIPerf's exit status and exits with it after listing the results",
  },
  {
    field: "the model-download Job's shell script",
    why: "compared are the huggingface_hub version it installs and that it runs `hf download` of the model",
  },
];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function sortEnv(value: unknown): void {
  if (Array.isArray(value)) value.forEach(sortEnv);
  else if (isObj(value))
    for (const [k, v] of Object.entries(value)) {
      if (k === "env" && Array.isArray(v))
        v.sort((a, b) => String(obj(a).name).localeCompare(String(obj(b).name)));
      sortEnv(v);
    }
}

function containerEnv(c: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of list(c.env)) if (isObj(e) && typeof e.value === "string") env[String(e.name)] = e.value;
  return env;
}

function summarizeScripts(doc: Obj): void {
  const spec = obj(obj(obj(doc.spec).template).spec);
  for (const c of list(spec.containers).filter(isObj)) {
    const env = containerEnv(c);
    const command = list(c.command).map(String);
    const args = list(c.args).map(String);
    const script = [...command, ...args].join("\n");
    if (/aiperf profile/.test(script)) {
      c.command = {
        aiperf: /aiperf==([\w.+-]+)/.exec(script)?.[1] ?? null,
        commands: aiperfCommands(script, env).map((flags) =>
          flags.map(([f, v]) => `${f}${v === null ? "" : ` ${v}`}`).sort(),
        ),
      };
    } else if (/hf download/.test(script)) {
      c.args = {
        huggingface_hub: /huggingface_hub==([\w.+-]+)/.exec(script)?.[1] ?? null,
        downloads: /hf download\s+"?\$\{?MODEL_NAME\}?"?/.test(script) ? env.MODEL_NAME : null,
      };
    }
  }
}

/** Documents normalized for comparison, keyed `Kind/name` (upstream's engine ConfigMap renamed per arm). */
export function normalizeForRoundTrip(docs: readonly ManifestDoc[]): Map<string, Obj> {
  const out = new Map<string, Obj>();
  // Which ConfigMap (by file) each deployment mounts, to give it the per-arm name.
  const renames = new Map<string, string>();
  for (const d of docs) {
    if (docKind(d) !== "DynamoGraphDeployment") continue;
    const dgd = docName(d) ?? "";
    for (const svc of Object.values(obj(obj(obj(d.value).spec).services)))
      for (const v of list(obj(obj(svc).extraPodSpec).volumes))
        if (isObj(v) && isObj(v.configMap))
          renames.set(`${d.file}|${String(v.configMap.name)}`, configMapName(dgd));
  }
  for (const d of docs) {
    const value = pruneNulls(structuredClone(d.value)) as Obj;
    const meta = obj(value.metadata);
    delete meta.namespace;
    const kind = docKind(d);
    if (kind === "ConfigMap") {
      const renamed = renames.get(`${d.file}|${String(meta.name)}`);
      if (renamed) meta.name = renamed;
      value.data = Object.fromEntries(
        Object.entries(obj(value.data)).map(([k, v]) => [k, typeof v === "string" ? parse(v) : v]),
      );
    }
    if (kind === "DynamoGraphDeployment") {
      const dgd = String(meta.name);
      for (const svc of Object.values(obj(obj(value.spec).services))) {
        const pod = obj(obj(svc).extraPodSpec);
        if (obj(svc).componentType === "frontend") delete pod.nodeSelector;
        for (const v of list(pod.volumes))
          if (isObj(v) && isObj(v.configMap)) v.configMap.name = configMapName(dgd);
      }
    }
    if (kind === "Job") summarizeScripts(value);
    sortEnv(value);
    out.set(`${kind}/${String(meta.name)}`, value);
  }
  return out;
}
