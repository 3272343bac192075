import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";

/*
 * A CustomResourceDefinition's OpenAPI schema turned into a JSON Schema that ajv checks the way the API server
 * does with `kubectl apply --validate=strict`: unknown fields are errors, `null`s of non-nullable fields are pruned
 * before checking, list-maps must be unique by their keys, and ObjectMeta gets the checks the CRD leaves to the
 * server. CEL rules (`x-kubernetes-validations`) are not evaluated; the invariants in ./invariants.ts cover the
 * ones that matter for rendered recipes.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Node = { [key: string]: Json };

export interface CrdVersion {
  group: string;
  kind: string;
  version: string;
  deprecated: boolean;
  schema: Node;
}

const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/** The served versions of a CRD document, each with its OpenAPI schema; throws TypeError on a malformed CRD. */
export function crdVersions(crd: unknown): CrdVersion[] {
  if (!isNode(crd) || crd.kind !== "CustomResourceDefinition" || !isNode(crd.spec))
    throw new TypeError("not a CustomResourceDefinition");
  const spec = crd.spec;
  const names = spec.names;
  if (typeof spec.group !== "string" || !isNode(names) || typeof names.kind !== "string")
    throw new TypeError("CustomResourceDefinition without spec.group / spec.names.kind");
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  return versions.filter(isNode).flatMap((v) => {
    const schema = isNode(v.schema) ? v.schema.openAPIV3Schema : undefined;
    if (v.served !== true || typeof v.name !== "string" || !isNode(schema)) return [];
    return [
      {
        group: spec.group as string,
        kind: names.kind as string,
        version: v.name,
        deprecated: v.deprecated === true,
        schema,
      },
    ];
  });
}

/** RFC 1123 subdomain, what the API server requires of most object names. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const OBJECT_META: Node = {
  type: "object",
  required: ["name"],
  properties: {
    name: { type: "string", maxLength: 253, pattern: DNS1123_SUBDOMAIN.source },
    namespace: { type: "string", maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    annotations: { type: "object", additionalProperties: { type: "string" } },
  },
  // Server-managed fields (uid, resourceVersion, …) are allowed but never rendered.
  additionalProperties: true,
};

const DROPPED = new Set([
  "description",
  "default",
  "example",
  "x-kubernetes-validations",
  "x-kubernetes-map-type",
]);

/** One schema node, rewritten recursively. */
function transform(node: Node): Node {
  const out: Node = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED.has(key)) continue;
    if (key === "properties" && isNode(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, isNode(v) ? transform(v) : v]),
      );
    } else if ((key === "items" || key === "additionalProperties") && isNode(value)) {
      out[key] = transform(value);
    } else if ((key === "anyOf" || key === "allOf" || key === "oneOf") && Array.isArray(value)) {
      out[key] = value.map((v) => (isNode(v) ? transform(v) : v));
    } else if (key.startsWith("x-kubernetes-") || key === "nullable") {
      // Handled below from the original node.
    } else {
      out[key] = value;
    }
  }
  if (node["x-kubernetes-int-or-string"] === true && !("anyOf" in node)) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (node.nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  const listType = node["x-kubernetes-list-type"];
  if (listType === "set") out.uniqueItems = true;
  if (listType === "map" && Array.isArray(node["x-kubernetes-list-map-keys"]))
    out.listMapKeys = node["x-kubernetes-list-map-keys"];
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  if (node["x-kubernetes-embedded-resource"] === true && isNode(out.properties)) {
    out.properties = {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      ...out.properties,
    };
  }
  if (out.type === "object" && isNode(out.properties) && !("additionalProperties" in out) && !preserve)
    out.additionalProperties = false;
  return out;
}

/** The JSON Schema one custom resource of `v` must match. */
export function customResourceSchema(v: CrdVersion): Node {
  const root = transform(v.schema);
  const properties = isNode(root.properties) ? root.properties : {};
  return {
    ...root,
    type: "object",
    required: [
      "apiVersion",
      "kind",
      "metadata",
      ...(Array.isArray(root.required) ? root.required : []),
    ].filter((k, i, all) => all.indexOf(k) === i),
    properties: {
      ...properties,
      apiVersion: { const: `${v.group}/${v.version}` },
      kind: { const: v.kind },
      metadata: OBJECT_META,
    },
    additionalProperties: false,
  };
}

function listMapDuplicate(keys: readonly string[], items: unknown[]): number | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!isNode(item)) continue;
    const id = JSON.stringify(keys.map((k) => item[k] ?? null));
    if (seen.has(id)) return i;
    seen.add(id);
  }
  return undefined;
}

/** An ajv instance that knows the keywords and formats Kubernetes schemas use. */
export function kubernetesAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const INT32 = 2 ** 31;
  ajv.addFormat("int32", {
    type: "number",
    validate: (n: number) => Number.isInteger(n) && n >= -INT32 && n < INT32,
  });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat("date-time", { type: "string", validate: (s: string) => !Number.isNaN(Date.parse(s)) });
  ajv.addKeyword({
    keyword: "listMapKeys",
    type: "array",
    schemaType: "array",
    errors: true,
    validate: function listMap(keys: string[], items: unknown[]) {
      const dup = listMapDuplicate(keys, items);
      if (dup === undefined) return true;
      (listMap as unknown as { errors: Partial<ErrorObject>[] }).errors = [
        {
          keyword: "listMapKeys",
          message: `duplicate entry [${dup}]: items must be unique by ${keys.join(", ")}`,
          params: { keys, index: dup },
        },
      ];
      return false;
    },
  });
  return ajv;
}

/** Removes `null`-valued keys (the API server prunes them for non-nullable fields), recursively, in place. */
export function pruneNulls(value: unknown): unknown {
  if (Array.isArray(value)) value.forEach(pruneNulls);
  else if (isNode(value))
    for (const [k, v] of Object.entries(value)) {
      if (v === null) delete value[k];
      else pruneNulls(v);
    }
  return value;
}

export interface SchemaIssue {
  /** `.spec.services.agg.replicas`, with list indexes as `[i]`. */
  path: string;
  /** `schema:<keyword>`, e.g. `schema:type`, `schema:required`. */
  rule: string;
  message: string;
}

/** `/spec/services/agg/args/0` → `.spec.services.agg.args[0]`. */
export function jsonPointerToPath(pointer: string): string {
  if (pointer === "") return ".";
  return pointer
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) =>
      /^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`,
    )
    .join("");
}

/** Ajv's errors as issues: one per problem, the alternatives of an `anyOf` folded into it. */
export function schemaIssues(errors: readonly ErrorObject[] | null | undefined): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.schemaPath.includes("/anyOf/")) continue;
    let path = jsonPointerToPath(e.instancePath);
    let message = e.message ?? "is invalid";
    if (e.keyword === "additionalProperties") {
      const field = String((e.params as { additionalProperty?: string }).additionalProperty);
      path = `${path === "." ? "" : path}.${field}`;
      message = "unknown field";
    } else if (e.keyword === "required") {
      const field = String((e.params as { missingProperty?: string }).missingProperty);
      path = `${path === "." ? "" : path}.${field}`;
      message = "required field is missing";
    } else if (e.keyword === "anyOf") {
      message = "must be an integer or a string";
    } else if (e.keyword === "const" || e.keyword === "enum") {
      const allowed = (e.params as { allowedValue?: unknown; allowedValues?: unknown[] }).allowedValues ?? [
        (e.params as { allowedValue?: unknown }).allowedValue,
      ];
      message = `must be ${allowed.map((a) => JSON.stringify(a)).join(" or ")}`;
    }
    const key = `${path}|${e.keyword}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ path, rule: `schema:${e.keyword}`, message });
  }
  return issues;
}

/** A compiled validator for one CRD version. */
export interface CustomResourceValidator {
  readonly apiVersion: string;
  readonly kind: string;
  readonly deprecated: boolean;
  validate(doc: unknown): SchemaIssue[];
}

/** A validator for one CRD version, compiled on first use (a large version takes half a second). */
export function compileCustomResource(ajv: Ajv, v: CrdVersion): CustomResourceValidator {
  let fn: ValidateFunction | undefined;
  return {
    apiVersion: `${v.group}/${v.version}`,
    kind: v.kind,
    deprecated: v.deprecated,
    validate(doc) {
      fn ??= ajv.compile(customResourceSchema(v));
      const copy = pruneNulls(structuredClone(doc));
      return fn(copy) ? [] : schemaIssues(fn.errors);
    },
  };
}
