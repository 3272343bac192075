import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileCustomResource, crdVersions, jsonPointerToPath, kubernetesAjv } from "./crd-schema.ts";

// A small CRD with the Kubernetes schema extensions the real ones use.
const CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  spec: {
    group: "example.com",
    names: { kind: "Widget" },
    versions: [
      { name: "v0", served: false, schema: { openAPIV3Schema: { type: "object" } } },
      {
        name: "v1",
        served: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              apiVersion: { type: "string" },
              kind: { type: "string" },
              metadata: { type: "object" },
              spec: {
                type: "object",
                required: ["size"],
                properties: {
                  size: { "x-kubernetes-int-or-string": true },
                  count: { type: "integer", format: "int32", description: "dropped" },
                  tags: { type: "array", items: { type: "string" }, "x-kubernetes-list-type": "set" },
                  ports: {
                    type: "array",
                    items: {
                      type: "object",
                      properties: { name: { type: "string" }, port: { type: "integer" } },
                    },
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                  },
                  free: {
                    type: "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    properties: { a: { type: "string" } },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

const [v1] = crdVersions(CRD);
const widget = compileCustomResource(kubernetesAjv(), v1!);
const doc = (spec: object, name = "w") => ({
  apiVersion: "example.com/v1",
  kind: "Widget",
  metadata: { name },
  spec,
});
const rules = (spec: object, name?: string) =>
  widget.validate(doc(spec, name)).map((i) => `${i.path} ${i.rule}`);

describe("CRD schemas as the API server applies them", () => {
  it("serves only served versions", () => {
    assert.deepEqual(
      crdVersions(CRD).map((v) => v.version),
      ["v1"],
    );
    assert.throws(() => crdVersions({ kind: "ConfigMap" }), TypeError);
  });

  it("accepts a valid object, pruning nulls first", () => {
    assert.deepEqual(
      rules({ size: "1Gi", count: 3, tags: ["a"], ports: [{ name: "x" }], free: { b: 1 }, extra: null }),
      [],
    );
    assert.deepEqual(rules({ size: 4 }), []);
  });

  it("rejects unknown fields, wrong types, int32 overflow, set and list-map duplicates, bad names", () => {
    assert.deepEqual(rules({ size: 1, colour: "red" }), [".spec.colour schema:additionalProperties"]);
    assert.deepEqual(rules({ size: true }), [".spec.size schema:anyOf"]);
    assert.deepEqual(rules({ size: 1, count: 2 ** 31 }), [".spec.count schema:format"]);
    assert.deepEqual(rules({ size: 1, tags: ["a", "a"] }), [".spec.tags schema:uniqueItems"]);
    assert.deepEqual(rules({ size: 1, ports: [{ name: "x" }, { name: "x", port: 2 }] }), [
      ".spec.ports schema:listMapKeys",
    ]);
    assert.deepEqual(rules({}), [".spec.size schema:required"]);
    assert.deepEqual(rules({ size: 1 }, "Not_DNS"), [".metadata.name schema:pattern"]);
    assert.deepEqual(
      widget.validate({ ...doc({ size: 1 }), apiVersion: "example.com/v2" }).map((i) => i.rule),
      ["schema:const"],
    );
  });

  it("names paths the way kubectl does", () => {
    assert.equal(jsonPointerToPath("/spec/services/agg/args/0"), ".spec.services.agg.args[0]");
    assert.equal(jsonPointerToPath("/data/a.yaml"), '.data["a.yaml"]');
    assert.equal(jsonPointerToPath(""), ".");
  });
});
