import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CommanderError } from "@commander-js/extra-typings";
import { ServelabError } from "../../errors.ts";
import { createBlockHasher } from "../../kv/block-hash.ts";
import { parseWorkerArgs, spawnWorkerCli } from "../../testing/worker-cli.ts";
import { KvEventSubscriber } from "./subscriber.ts";
import { recordingSink, waitFor } from "./testing.ts";

const parse = parseWorkerArgs;

describe("servelab worker --kv-events-config", () => {
  it("refuses a bad configuration before starting anything", async () => {
    for (const [config, fragment] of [
      ["{nope", "not valid JSON"],
      ['{"enable_kv_cache_events":true,"endpont":"tcp://*:1"}', '"endpont"'],
      ['{"enable_kv_cache_events":true,"buffer_steps":-1}', "buffer_steps"],
    ] as const) {
      const { error } = await parse(["--port", "0", "--kv-events-config", config]);
      assert.ok(error instanceof ServelabError && error.code === "KV_EVENTS_CONFIG", String(error));
      assert.ok(error.message.includes(fragment), error.message);
    }
    const layout = await parse(["--kv-events-ports", "single"]);
    assert.ok(layout.error instanceof CommanderError);
    assert.match(layout.stderr, /Allowed choices are per-rank, shared/);
  });

  it("publishes each DP rank's events on its own port, announced at start", async () => {
    const config = JSON.stringify({
      enable_kv_cache_events: true,
      endpoint: "tcp://127.0.0.1:0",
      replay_endpoint: "tcp://127.0.0.1:0",
      topic: "kv-events",
    });
    const child = spawnWorkerCli([
      "--port",
      "0",
      "--dp-size",
      "2",
      "--block-size",
      "4",
      "--kv-events-config",
      config,
    ]);
    const exit = new Promise<number | null>((resolve) => child.on("exit", resolve));
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const rec = recordingSink();
    const sub = new KvEventSubscriber({
      sink: rec.sink,
      hasher: await createBlockHasher(),
      reconnectIntervalMs: 20,
    });
    try {
      await waitFor(
        () => (stdout.match(/KV events of dp rank/g) ?? []).length === 2,
        `two announced publishers (${stderr})`,
        20_000,
      );
      const url = /serving .* at (http:\/\/\S+)\/v1 /.exec(stdout)![1]!;
      const ranks = [
        ...stdout.matchAll(/KV events of dp rank (\d) on (tcp:\S+), replay on (tcp:\S+), topic "kv-events"/g),
      ];
      assert.deepEqual(
        ranks.map((m) => m[1]),
        ["0", "1"],
      );
      for (const m of ranks)
        sub.addSource({
          workerId: "w",
          dpRank: Number(m[1]),
          endpoint: m[2]!,
          replayEndpoint: m[3]!,
          topic: "kv-events",
        });
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "servelab-mock", prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9], max_tokens: 1 }),
      });
      assert.equal(res.status, 200, await res.text());
      await waitFor(() => rec.events.some((e) => e.data.type === "stored"), "the stored blocks");
      const stored = rec.events.find((e) => e.data.type === "stored")!;
      assert.equal(stored.data.type === "stored" && stored.data.blocks.length, 2);
    } finally {
      await sub.close();
      child.kill("SIGTERM");
    }
    assert.equal(await exit, 0, stderr);
  });
});
