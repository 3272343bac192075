import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { loadRecipe, parseRecipe } from "../recipe/load.ts";
import { assertServelabError } from "../testing/assert-errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { runInProcess } from "../testing/run-cli.ts";
import { SERVELAB_VERSION } from "./files.ts";
import { fileText, parseHeader, renderRecipe } from "./render.ts";

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form objects read for assertions
type Obj = Record<string, any>;

const recipe = await loadRecipe(FOUNDING_RECIPE);
const founding = await readFile(FOUNDING_RECIPE, "utf8");

function docsOf(files: ReturnType<typeof renderRecipe>, path: string): Obj[] {
  const f = files.find((x) => x.path === path);
  assert.ok(f, `no ${path} among ${files.map((x) => x.path).join(", ")}`);
  return f.docs as Obj[];
}

const text = (files: ReturnType<typeof renderRecipe>) =>
  files
    .map((f) => fileText(f, { recipe: recipe.name, servelabVersion: SERVELAB_VERSION, dynamoVersion: "1.3" }))
    .join("");

describe("deploy render: the founding recipe's arms", () => {
  const files = renderRecipe(recipe);

  it("writes the upstream layout: shared model-cache objects, then deploy.yaml and perf.yaml per arm", () => {
    assert.deepEqual(
      files.map((f) => f.path),
      [
        "model-cache/model-cache.yaml",
        "model-cache/compute-domain.yaml",
        "model-cache/model-download.yaml",
        "agg-round-robin/deploy.yaml",
        "agg-round-robin/perf.yaml",
        "disagg-kv/deploy.yaml",
        "disagg-kv/perf.yaml",
      ],
    );
  });

  it("gives each arm its graph deployment with the router mode and the worker topology", () => {
    const [agg] = docsOf(files, "agg-round-robin/deploy.yaml");
    const [disagg] = docsOf(files, "disagg-kv/deploy.yaml");
    assert.equal(agg!.metadata.name, "agg-round-robin-dsv32-nvfp4");
    assert.equal(disagg!.metadata.name, "disagg-kv-dsv32-nvfp4");
    assert.deepEqual(Object.keys(agg!.spec.services), ["Frontend", "agg"]);
    assert.deepEqual(Object.keys(disagg!.spec.services), ["Frontend", "prefill", "dec"]);
    const fe = (g: Obj) => g.spec.services.Frontend.extraPodSpec.mainContainer.args;
    assert.deepEqual(fe(agg!), [
      "-m",
      "dynamo.frontend",
      "--router-mode",
      "round-robin",
      "--request-plane",
      "nats",
    ]);
    // The recipe's KV router sets router_reset_states, the one non-default knob.
    assert.deepEqual(fe(disagg!), [
      "-m",
      "dynamo.frontend",
      "--router-mode",
      "kv",
      "--router-reset-states",
      "--request-plane",
      "nats",
    ]);
    const a = agg!.spec.services.agg;
    assert.equal(a.replicas, 4);
    assert.deepEqual(a.multinode, { nodeCount: 2 });
    assert.deepEqual(a.resources.limits, { gpu: "4" });
    const dec = disagg!.spec.services.dec;
    assert.equal(dec.subComponentType, "decode");
    assert.equal(disagg!.spec.services.prefill.extraPodSpec.tolerations.length, 4);
    assert.equal(dec.extraPodSpec.tolerations, undefined);
    const args: string[] = dec.extraPodSpec.mainContainer.args;
    assert.deepEqual(
      args.slice(args.indexOf("--extra-engine-args"), args.indexOf("--extra-engine-args") + 4),
      ["--extra-engine-args", "/config/decode.yaml", "--disaggregation-mode", "decode"],
    );
    const env = Object.fromEntries(
      dec.extraPodSpec.mainContainer.env.filter((e: Obj) => "value" in e).map((e: Obj) => [e.name, e.value]),
    );
    assert.equal(env.ENROOT_ALLOW_DEV, "yes");
    assert.equal(env.TRTLLM_FORCE_COMM_METHOD, "NVLINK_TWO_SIDED");
    assert.equal(env.HF_HOME, "/model-cache");
    const prefillEnv = disagg!.spec.services.prefill.extraPodSpec.mainContainer.env.map((e: Obj) => e.name);
    assert.ok(!prefillEnv.includes("TRTLLM_FORCE_COMM_METHOD"));
  });

  it("puts each arm's engine YAMLs in its own ConfigMap, matching the engine blocks", () => {
    const [, aggCm] = docsOf(files, "agg-round-robin/deploy.yaml");
    const [, disaggCm] = docsOf(files, "disagg-kv/deploy.yaml");
    assert.notEqual(aggCm!.metadata.name, disaggCm!.metadata.name);
    assert.deepEqual(Object.keys(aggCm!.data), ["aggregated.yaml"]);
    assert.deepEqual(Object.keys(disaggCm!.data), ["prefill.yaml", "decode.yaml"]);
    const prefill = parse(disaggCm!.data["prefill.yaml"]);
    assert.equal(prefill.kv_cache_config.enable_block_reuse, true);
    assert.equal(prefill.kv_cache_config.tokens_per_block, 64);
    // TRT-LLM's unset options stay unset, as in upstream's prefill.yaml.
    assert.equal(prefill.allreduce_strategy, undefined);
    assert.equal(prefill.num_postprocess_workers, undefined);
    assert.deepEqual(prefill.moe_config, { backend: "TRTLLM" });
    const decode = parse(disaggCm!.data["decode.yaml"]);
    assert.equal(decode.moe_config.backend, "WIDEEP");
    assert.equal(decode.enable_chunked_prefill, undefined);
    assert.equal(parse(aggCm!.data["aggregated.yaml"]).kv_cache_config.enable_block_reuse, false);
  });

  it("runs the recipe's trace replay with its goodput SLOs in the perf Job", () => {
    const [job] = docsOf(files, "disagg-kv/perf.yaml");
    assert.equal(job!.metadata.name, "disagg-kv-dsv32-nvfp4-bench");
    const c = job!.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.filter((e: Obj) => "value" in e).map((e: Obj) => [e.name, e.value]));
    assert.equal(env.ENDPOINT, "disagg-kv-dsv32-nvfp4-frontend:8000");
    assert.equal(
      env.TRACE_FILE,
      "/model-cache/traces/conversation_trace_synth_16.00x1+10.00_speedup1_maxisl110000.jsonl",
    );
    assert.equal(env.TTFT_THRESHOLD_MS, "20000");
    assert.equal(env.ITL_THRESHOLD_MS, "50");
    const script: string = c.command[2];
    assert.match(script, /--fixed-schedule/);
    assert.match(
      script,
      /--goodput "time_to_first_token:\$\{TTFT_THRESHOLD_MS\} inter_token_latency:\$\{ITL_THRESHOLD_MS\}"/,
    );
    assert.match(script, /--synthetic-input-tokens-mean 10000/);
    assert.match(script, /aiperf==0\.10\.0/);
    const anti =
      job!.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
    assert.deepEqual(anti.labelSelector.matchExpressions[0].values, ["disagg-kv-dsv32-nvfp4"]);
  });

  it("writes deterministic YAML with a header naming the recipe and servelab's version", () => {
    assert.equal(text(renderRecipe(recipe)), text(files));
    const agg = files.find((f) => f.path === "agg-round-robin/deploy.yaml")!;
    const t = fileText(agg, { recipe: recipe.name, servelabVersion: SERVELAB_VERSION, dynamoVersion: "1.3" });
    assert.deepEqual(parseHeader(t), {
      servelabVersion: SERVELAB_VERSION,
      recipe: "dsv32-wideep-routing",
      arm: "agg-round-robin",
      gpus: 32,
      dynamoVersion: "1.3",
    });
  });

  it("quotes strings kubectl's YAML 1.1 would read as booleans or numbers", () => {
    const dec = files.find((f) => f.path === "disagg-kv/deploy.yaml")!;
    const t = fileText(dec, { recipe: recipe.name, servelabVersion: SERVELAB_VERSION, dynamoVersion: "1.3" });
    assert.match(t, /value: "yes"/);
    const [graph] = parseAllDocuments(t, { version: "1.1" }).map((d) => d.toJS() as Obj);
    const envs: Obj[] = graph!.spec.services.dec.extraPodSpec.mainContainer.env;
    for (const e of envs) if ("value" in e) assert.equal(typeof e.value, "string", e.name);
    const args: unknown[] = graph!.spec.services.dec.extraPodSpec.mainContainer.args;
    assert.ok(args.every((a) => typeof a === "string"));
  });
});

describe("deploy render: options and the deploy section", () => {
  it("renders one arm, with a namespace on every object and the storage class given", () => {
    const files = renderRecipe(recipe, { arms: ["disagg-kv"], namespace: "bench", storageClass: "fast-rwx" });
    assert.deepEqual(
      files.map((f) => f.path).filter((p) => !p.startsWith("model-cache/")),
      ["disagg-kv/deploy.yaml", "disagg-kv/perf.yaml"],
    );
    for (const f of files)
      for (const d of f.docs as Obj[]) assert.equal(d.metadata.namespace, "bench", f.path);
    assert.equal((docsOf(files, "model-cache/model-cache.yaml")[0] as Obj).spec.storageClassName, "fast-rwx");
  });

  it("picks the runtime image of the Dynamo release line unless the recipe names one", () => {
    const image = (opts: Parameters<typeof renderRecipe>[1], r = recipe) =>
      (docsOf(renderRecipe(r, opts), "agg-round-robin/deploy.yaml")[0] as Obj).spec.services.agg.extraPodSpec
        .mainContainer.image;
    assert.equal(image({}), "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.1");
    assert.equal(image({ dynamoVersion: "1.0" }), "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.0.2");
    const pinned = parseRecipe(`${founding}\ndeploy:\n  images:\n    runtime: example.com/rt:9\n`, "r.yaml");
    assert.equal(image({ dynamoVersion: "1.0" }, pinned), "example.com/rt:9");
  });

  it("takes cluster settings from the recipe's deploy section", () => {
    const r = parseRecipe(
      `${founding}\ndeploy:\n  name_suffix: ""\n  env:\n    prefill:\n      EXTRA: "on"\n  tolerations:\n    prefill: []\n  perf:\n    warmup: null\n`,
      "r.yaml",
    );
    const files = renderRecipe(r);
    const [graph] = docsOf(files, "disagg-kv/deploy.yaml");
    assert.equal(graph!.metadata.name, "disagg-kv");
    const prefill = graph!.spec.services.prefill.extraPodSpec;
    assert.equal(prefill.tolerations, undefined);
    assert.ok(prefill.mainContainer.env.some((e: Obj) => e.name === "EXTRA" && e.value === "on"));
    const script: string = (docsOf(files, "disagg-kv/perf.yaml")[0] as Obj).spec.template.spec.containers[0]
      .command[2];
    assert.equal((script.match(/aiperf profile/g) ?? []).length, 1);
  });

  it("rejects a misspelt deploy key and an unknown arm", () => {
    assertServelabError(
      () => parseRecipe(`${founding}\ndeploy:\n  storage_clas: x\n`, "r.yaml"),
      "RECIPE_INVALID",
    );
    assertServelabError(() => renderRecipe(recipe, { arms: ["nope"] }), "USAGE", "nope");
  });

  it("refuses a router knob whose frontend flag servelab does not know", () => {
    const r = parseRecipe(
      founding.replace("router_reset_states: true", "router_reset_states: true\n      router_ttl_secs: 60"),
      "r.yaml",
    );
    assertServelabError(() => renderRecipe(r), "DEPLOY_RENDER", "router_ttl_secs");
  });

  it("`servelab deploy render` writes the files atomically under --out", async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "m");
      const r = await runInProcess([
        "deploy",
        "render",
        FOUNDING_RECIPE,
        "--out",
        out,
        "--arm",
        "agg-round-robin",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const deploy = await readFile(join(out, "agg-round-robin/deploy.yaml"), "utf8");
      assert.match(deploy, /^# Rendered by servelab /);
      const bad = await runInProcess(["deploy", "render", FOUNDING_RECIPE, "--dynamo-version", "2.0"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /error\[USAGE\]/);
    });
  });
});
