// One module per model: the group indexes load every model of the group (~1 s for the two).
import { Job } from "kubernetes-models/batch/v1/Job";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { LineCounter, parseAllDocuments } from "yaml";
import type { DynamoVersion } from "../recipe/deploy-schema.ts";
import { DNS1123_SUBDOMAIN, jsonPointerToPath, type SchemaIssue } from "./crd-schema.ts";
import { type CrdValidators, validatorKey } from "./crds.ts";
import { crossObjectIssues } from "./invariants.ts";
import { docLabel, type ManifestDoc, type ManifestIssue } from "./manifest-doc.ts";
import { parseHeader } from "./render.ts";

export type { ManifestDoc, ManifestIssue } from "./manifest-doc.ts";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/*
 * Offline checks of Kubernetes manifests before `kubectl apply`: custom resources against their CRD's schema,
 * built-in kinds against the Kubernetes models, then the cross-object rules no schema can state (./invariants.ts).
 * Every problem names the document, the JSON path and the rule broken.
 */

/** The documents of one YAML file, read as kubectl does (YAML 1.1: a bare `yes` is a boolean). */
export function parseManifests(text: string, file: string): { docs: ManifestDoc[]; issues: ManifestIssue[] } {
  const lineCounter = new LineCounter();
  const header = parseHeader(text);
  const docs: ManifestDoc[] = [];
  const issues: ManifestIssue[] = [];
  let index = 0;
  for (const doc of parseAllDocuments(text, { version: "1.1", lineCounter, uniqueKeys: true })) {
    const line = lineCounter.linePos(doc.range[0]).line;
    if (doc.errors.length > 0) {
      for (const e of doc.errors)
        issues.push({
          doc: `${file}:${lineCounter.linePos(e.pos[0]).line}`,
          path: ".",
          rule: "yaml:parse",
          message: e.message.split("\n")[0]!,
        });
      index++;
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    // An empty document (a trailing `---`) is nothing to apply.
    if (value === null || value === undefined) continue;
    docs.push({
      file,
      index: index++,
      line,
      value,
      ...(header?.gpus === undefined ? {} : { expectedGpus: header.gpus }),
    });
  }
  return { docs, issues };
}

interface ModelClass {
  new (data: Obj): { validate(): void };
}

const BUILT_IN: Record<string, ModelClass> = {
  "batch/v1 Job": Job as unknown as ModelClass,
  "v1 ConfigMap": ConfigMap as unknown as ModelClass,
  "v1 PersistentVolumeClaim": PersistentVolumeClaim as unknown as ModelClass,
};

function builtInIssues(model: ModelClass, value: Obj): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  try {
    new model(value).validate();
  } catch (e) {
    const errors = (
      e as { errors?: { instancePath?: string; keyword?: string; message?: string; params?: Obj }[] }
    ).errors;
    if (!Array.isArray(errors)) return [{ path: ".", rule: "k8s:model", message: (e as Error).message }];
    for (const err of errors) {
      let path = jsonPointerToPath(err.instancePath ?? "");
      const missing = err.params?.missingProperty;
      if (err.keyword === "required" && typeof missing === "string")
        path = `${path === "." ? "" : path}.${missing}`;
      issues.push({ path, rule: `k8s:${err.keyword ?? "model"}`, message: err.message ?? "is invalid" });
    }
  }
  const meta = value.metadata;
  const name = isObj(meta) ? meta.name : undefined;
  if (typeof name !== "string")
    issues.push({ path: ".metadata.name", rule: "k8s:required", message: "required field is missing" });
  else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    issues.push({
      path: ".metadata.name",
      rule: "k8s:dns1123",
      message: `${JSON.stringify(name)} is not a DNS-1123 subdomain`,
    });
  return issues;
}

/** Schema problems of one document, against each Dynamo release line's CRDs. */
function schemaIssuesOf(d: ManifestDoc, crds: ReadonlyMap<DynamoVersion, CrdValidators>): ManifestIssue[] {
  const label = docLabel(d);
  const v = d.value;
  if (!isObj(v))
    return [{ doc: label, path: ".", rule: "k8s:object", message: "a manifest must be a mapping" }];
  const { apiVersion, kind } = v;
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    return [
      { doc: label, path: ".", rule: "k8s:type-meta", message: "apiVersion and kind are required strings" },
    ];
  const key = validatorKey(apiVersion, kind);
  const builtIn = BUILT_IN[key];
  if (builtIn) return builtInIssues(builtIn, v).map((i) => ({ doc: label, ...i }));
  const out: ManifestIssue[] = [];
  let known = false;
  for (const [version, validators] of crds) {
    const validator = validators.get(key);
    const kindServed = [...validators.values()].some((x) => x.kind === kind);
    if (!validator) {
      if (kindServed)
        out.push({
          doc: label,
          path: ".apiVersion",
          rule: "schema:apiVersion",
          message: `${apiVersion} is not a served version of ${kind} in the Dynamo ${version} CRDs`,
        });
      known ||= kindServed;
      continue;
    }
    known = true;
    const suffix = crds.size > 1 ? ` (Dynamo ${version} CRD)` : "";
    for (const i of validator.validate(v)) out.push({ doc: label, ...i, message: `${i.message}${suffix}` });
  }
  if (!known)
    out.push({
      doc: label,
      path: ".kind",
      rule: "kind:unknown",
      message: `servelab has no schema for ${apiVersion} ${kind}`,
    });
  return out;
}

export interface ValidateOptions {
  /** Compiled CRDs of each Dynamo release line to check against. */
  crds: ReadonlyMap<DynamoVersion, CrdValidators>;
  /** GPUs each DynamoGraphDeployment (by name) must take, e.g. from the recipe; overrides file headers. */
  expectedGpus?: ReadonlyMap<string, number>;
}

/** Every problem of a set of manifests: schemas first, in document order, then the cross-object rules. */
export function validateManifests(docs: readonly ManifestDoc[], opts: ValidateOptions): ManifestIssue[] {
  const issues = docs.flatMap((d) => schemaIssuesOf(d, opts.crds));
  return [...issues, ...crossObjectIssues(docs, opts.expectedGpus)];
}
