import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { DynamoVersion } from "../recipe/deploy-schema.ts";
import { loadRecipe } from "../recipe/load.ts";
import { skipWithoutData } from "../testing/data-dir.ts";
import { SHARED_DATA_DIR } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { runInProcess } from "../testing/run-cli.ts";
import { CRD_DATASETS, datasetEntryProblems } from "../trace/datasets.ts";
import { CRDS_FOR, type CrdValidators, loadCrdValidators } from "./crds.ts";
import { readManifests, SERVELAB_VERSION } from "./files.ts";
import { fileText, renderRecipe } from "./render.ts";
import { type ManifestDoc, type ManifestIssue, parseManifests, validateManifests } from "./validate.ts";

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form objects read for assertions
type Obj = Record<string, any>;

const CRD_FILE = join(SHARED_DATA_DIR, "k8s-crds/dynamo/1.3/nvidia.com_dynamographdeployments.yaml");
const skip = skipWithoutData(CRD_FILE);
const FIXTURES = join(import.meta.dirname, "fixtures", "deepseek-v32-fp4");

const recipe = await loadRecipe(FOUNDING_RECIPE);

const RENDERED = renderRecipe(recipe).flatMap(
  (f) =>
    parseManifests(
      fileText(f, { recipe: recipe.name, servelabVersion: SERVELAB_VERSION, dynamoVersion: "1.3" }),
      f.path,
    ).docs,
);

/** The founding recipe's rendered documents, as read back from their files; a fresh copy each call. */
const renderedDocs = (): ManifestDoc[] => structuredClone(RENDERED);

/** Every rendered document, with one changed by `mutate` (found by kind and name). */
function mutated(kind: string, name: string, mutate: (doc: Obj) => void): ManifestDoc[] {
  const docs = renderedDocs();
  const doc = docs.find((d) => (d.value as Obj).kind === kind && (d.value as Obj).metadata.name === name);
  assert.ok(doc, `no ${kind}/${name}`);
  mutate(doc.value as Obj);
  return docs;
}

describe("CRD datasets", () => {
  it("are registered with a path, size and checksum, and each release line has its DGD and ComputeDomain CRDs", () => {
    for (const [name, entry] of Object.entries(CRD_DATASETS))
      assert.deepEqual(datasetEntryProblems(name, entry), []);
    for (const names of Object.values(CRDS_FOR))
      for (const n of names) assert.ok(Object.hasOwn(CRD_DATASETS, n), n);
  });
});

describe("deploy validate", { skip }, async () => {
  const crds = new Map<DynamoVersion, CrdValidators>();
  if (!skip) {
    crds.set("1.3", await loadCrdValidators("1.3", { dataDir: SHARED_DATA_DIR }));
    crds.set("1.0", await loadCrdValidators("1.0", { dataDir: SHARED_DATA_DIR }));
  }
  const only13 = () => new Map([["1.3", crds.get("1.3")!]] as const);
  const issuesOf = (docs: ManifestDoc[]) => validateManifests(docs, { crds: only13() });
  const expectIssue = (issues: ManifestIssue[], rule: string, path: string | RegExp) => {
    const hit = issues.find(
      (i) => i.rule === rule && (typeof path === "string" ? i.path === path : path.test(i.path)),
    );
    assert.ok(hit, `expected ${rule} at ${String(path)}; got ${JSON.stringify(issues, null, 1)}`);
    return hit;
  };

  const DGD = "DynamoGraphDeployment";
  const DISAGG = "disagg-kv-dsv32-nvfp4";
  const AGG = "agg-round-robin-dsv32-nvfp4";

  it("passes both founding arms against the Dynamo 1.3 and 1.0 CRDs and every cross-object rule", () => {
    const gpus = new Map([
      [AGG, 32],
      [DISAGG, 32],
    ]);
    assert.deepEqual(validateManifests(renderedDocs(), { crds, expectedGpus: gpus }), []);
  });

  it("catches schema breaks in custom resources, naming the document, path and rule", () => {
    const cases: [Obj, string, string][] = [
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.componentTyp = "worker";
        }) as never,
        "schema:additionalProperties",
        ".spec.services.dec.componentTyp",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.replicas = "2";
        }) as never,
        "schema:type",
        ".spec.services.dec.replicas",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.multinode.nodeCount = 1;
        }) as never,
        "schema:minimum",
        ".spec.services.dec.multinode.nodeCount",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.resources.limits.gpu = 4;
        }) as never,
        "schema:type",
        ".spec.services.dec.resources.limits.gpu",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.resources.claims = [{}];
        }) as never,
        "schema:required",
        ".spec.services.dec.resources.claims[0].name",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          const rc = d.spec.services.dec.extraPodSpec.resourceClaims;
          rc.push({ ...rc[0] });
        }) as never,
        "schema:listMapKeys",
        ".spec.services.dec.extraPodSpec.resourceClaims",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.metadata.name = "Disagg_KV";
        }) as never,
        "schema:pattern",
        ".metadata.name",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.spec.backendFramework = "tensorrt";
        }) as never,
        "schema:enum",
        ".spec.backendFramework",
      ],
      [
        mutated(DGD, DISAGG, (d) => {
          d.apiVersion = "nvidia.com/v1beta1";
        }) as never,
        "schema:additionalProperties",
        ".spec.services",
      ],
      [
        mutated("ComputeDomain", "your-compute-domain", (d) => {
          delete d.spec.numNodes;
        }) as never,
        "schema:required",
        ".spec.numNodes",
      ],
    ];
    for (const [docs, rule, path] of cases) {
      const hit = expectIssue(issuesOf(docs as unknown as ManifestDoc[]), rule, path);
      assert.match(hit.doc, /\.yaml:\d+ (DynamoGraphDeployment|ComputeDomain)\//);
    }
  });

  it("reads manifests as kubectl does: a bare yes is a boolean, which an env value may not be", () => {
    const docs = parseManifests(
      "apiVersion: nvidia.com/v1alpha1\nkind: DynamoGraphDeployment\nmetadata: {name: x}\nspec:\n  services:\n    dec:\n      extraPodSpec:\n        mainContainer:\n          env:\n            - name: ENROOT_ALLOW_DEV\n              value: yes\n",
      "bare.yaml",
    ).docs;
    expectIssue(issuesOf(docs), "schema:type", ".spec.services.dec.extraPodSpec.mainContainer.env[0].value");
  });

  it("catches broken built-in objects with the Kubernetes models", () => {
    expectIssue(
      issuesOf(
        mutated("Job", "model-download", (d) => {
          d.spec.backoffLimit = "three";
        }),
      ),
      "k8s:type",
      ".spec.backoffLimit",
    );
    expectIssue(
      issuesOf(
        mutated("Job", `${DISAGG}-bench`, (d) => {
          delete d.spec.template.spec.containers[0].name;
        }),
      ),
      "k8s:required",
      ".spec.template.spec.containers[0].name",
    );
    expectIssue(
      issuesOf(
        mutated("ConfigMap", `${AGG}-trtllm-config`, (d) => {
          d.data["aggregated.yaml"] = 7;
        }),
      ),
      "k8s:type",
      '.data["aggregated.yaml"]',
    );
    expectIssue(
      issuesOf(
        mutated("PersistentVolumeClaim", "model-cache", (d) => {
          d.spec.accessModes = "ReadWriteMany";
        }),
      ),
      "k8s:type",
      ".spec.accessModes",
    );
    expectIssue(
      issuesOf(
        mutated("PersistentVolumeClaim", "model-cache", (d) => {
          d.metadata.name = "Model_Cache";
        }),
      ),
      "k8s:dns1123",
      ".metadata.name",
    );
  });

  it("catches what no schema states: claims, templates, block sizes, GPU totals, engine files, names", () => {
    expectIssue(
      issuesOf(
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.dec.resources.claims[0].name = "channel";
        }),
      ),
      "invariant:claim-name",
      ".spec.services.dec.resources.claims[0].name",
    );
    expectIssue(
      issuesOf(
        mutated(DGD, DISAGG, (d) => {
          d.spec.services.prefill.extraPodSpec.resourceClaims[0].resourceClaimTemplateName = "other-channel";
        }),
      ),
      "invariant:claim-template",
      ".spec.services.prefill.extraPodSpec.resourceClaims[0].resourceClaimTemplateName",
    );
    expectIssue(
      issuesOf(
        mutated("ConfigMap", `${DISAGG}-trtllm-config`, (d) => {
          d.data["decode.yaml"] = d.data["decode.yaml"].replace(
            "tokens_per_block: 64",
            "tokens_per_block: 32",
          );
        }),
      ),
      "invariant:kv-block-size",
      ".spec.services.dec.extraPodSpec.mainContainer.args",
    );
    const gpus = validateManifests(
      mutated(DGD, AGG, (d) => {
        d.spec.services.agg.replicas = 3;
      }),
      { crds: only13() },
    );
    assert.match(expectIssue(gpus, "invariant:gpu-total", ".spec.services").message, /24 GPUs .* has 32/);
    expectIssue(
      issuesOf(
        mutated(DGD, AGG, (d) => {
          d.spec.services.agg.resources.limits.gpu = "2";
        }),
      ),
      "invariant:tensor-parallel",
      ".spec.services.agg.resources.limits.gpu",
    );
    expectIssue(
      issuesOf(
        mutated("ConfigMap", `${AGG}-trtllm-config`, (d) => {
          d.data["stale.yaml"] = "max_batch_size: 1\n";
        }),
      ),
      "invariant:configmap-key",
      '.data["stale.yaml"]',
    );
    expectIssue(
      issuesOf(
        mutated("ConfigMap", `${AGG}-trtllm-config`, (d) => {
          d.data = { "agg.yaml": d.data["aggregated.yaml"] };
        }),
      ),
      "invariant:engine-file",
      ".spec.services.agg.extraPodSpec.mainContainer.args",
    );
    const long = "disagg-kv-with-a-much-longer-deployment-name";
    const named = mutated(DGD, DISAGG, (d) => {
      d.metadata.name = long;
    });
    expectIssue(issuesOf(named), "invariant:name-length", ".spec.services.prefill");
    // The perf Job still points at the old frontend.
    expectIssue(issuesOf(named), "invariant:endpoint", /\.env\[1\]\.value$/);
    expectIssue(
      issuesOf(
        mutated("Job", `${AGG}-bench`, (d) => {
          d.metadata.namespace = "elsewhere";
        }),
      ),
      "invariant:namespace",
      ".metadata.namespace",
    );
  });

  it("flags upstream's shared engine ConfigMap and placeholder namespaces", async () => {
    const { docs } = await readManifests([
      join(FIXTURES, "trtllm/agg-round-robin/deploy.yaml"),
      join(FIXTURES, "trtllm/disagg-kv-router/deploy.yaml"),
      join(FIXTURES, "trtllm/disagg-kv-router/perf.yaml"),
      join(FIXTURES, "model-cache/model-cache.yaml"),
    ]);
    const issues = validateManifests(docs, { crds });
    expectIssue(issues, "invariant:unique-name", ".metadata.name");
    expectIssue(issues, "invariant:namespace", ".metadata.namespace");
    assert.ok(!issues.some((i) => i.rule.startsWith("schema:")), JSON.stringify(issues));
  });

  it("`servelab deploy validate` exits 2 with one error line per problem", async () => {
    const ok = await runInProcess([
      "deploy",
      "validate",
      join(FIXTURES, "trtllm/disagg-kv-router/deploy.yaml"),
      "--data-dir",
      SHARED_DATA_DIR,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 2 documents in 1 files/);
    const bad = await runInProcess([
      "deploy",
      "validate",
      FIXTURES,
      "--dynamo-version",
      "1.3",
      "--data-dir",
      SHARED_DATA_DIR,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error\[DEPLOY_INVALID\]: 4 problems in 9 documents of 7 files/);
    assert.match(
      bad.stderr,
      /deploy\.yaml:\d+ ConfigMap\/dsv32-trtllm-config: \.metadata\.name: \[invariant:unique-name\]/,
    );
  });
});
