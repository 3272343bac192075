import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { spawnWorkerCli } from "../testing/worker-cli.ts";
import { registerWorkerCommand } from "./worker.ts";

async function parseError(args: string[]): Promise<unknown> {
  const program = new Command("servelab")
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerWorkerCommand(program);
  try {
    await program.parseAsync(["worker", ...args], { from: "user" });
    return undefined;
  } catch (e) {
    return e;
  }
}

describe("servelab worker --disaggregation-mode", () => {
  it("refuses a prefill worker without a recipe or --kv-bytes-per-token, and an unknown mode", async () => {
    const e = await parseError(["--disaggregation-mode", "prefill", "--port", "0"]);
    assert.ok(e instanceof ServelabError && e.code === "USAGE", String(e));
    assert.match(e.message, /--kv-bytes-per-token/);
    const bad = await parseError(["--disaggregation-mode", "both", "--port", "0"]);
    assert.ok(bad instanceof ServelabError && bad.code === "USAGE", String(bad));
  });

  it("serves a recipe arm's prefill group as a vLLM NIXL prefill worker", async () => {
    const child = spawnWorkerCli([
      ...["--recipe", FOUNDING_RECIPE, "--arm", "disagg-kv", "--disaggregation-mode", "prefill"],
      ...["--port", "0", "--speedup-ratio", "100", "--kv-lease-seconds", "60"],
    ]);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker did not start: ${stderr}`)), 20_000);
        const poll = setInterval(() => {
          const m = /at (http:\/\/\S+)\/v1 [\s\S]*\nservelab worker: (.*)\n/.exec(stdout);
          if (!m) return;
          clearInterval(poll);
          clearTimeout(timer);
          resolve(m[1]!);
        }, 10);
        void exited.then((code) => {
          clearInterval(poll);
          clearTimeout(timer);
          reject(new Error(`worker exited with ${code}: ${stderr}`));
        });
      });
      assert.match(stdout, /group prefill/);
      assert.match(
        stdout,
        /prefill worker, blocks held up to 60 s for the decode worker; KV hand-over at 900 GB\/s \(recipe NVLink\)/,
      );
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "nvidia/DeepSeek-V3.2-NVFP4",
          prompt: Array.from({ length: 200 }, (_, i) => i + 1),
          max_tokens: 1,
          kv_transfer_params: { do_remote_decode: true },
        }),
      });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const params = JSON.parse(body).kv_transfer_params;
      assert.equal(params.do_remote_prefill, true);
      assert.equal(params.remote_num_tokens, 200);
    } finally {
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });
});
