import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { ServelabError } from "../errors.ts";
import { withTempDir } from "../testing/fixtures.ts";
import { withMockerFlags } from "./mocker-flags.ts";

const rejects = async (p: Promise<unknown>, code: string, text: RegExp) =>
  assert.rejects(p, (e: ServelabError) => {
    assert.equal(e.code, code);
    assert.match(e.message + e.details.join("\n"), text);
    return true;
  });

describe("Dynamo mocker's flag names on servelab worker", () => {
  it("map onto servelab's own flags", async () => {
    assert.deepEqual(
      await withMockerFlags({
        modelPath: "deepseek-ai/DeepSeek-V3.2",
        dataParallelSize: 8,
        maxNumSeqs: 64,
        maxNumBatchedTokens: 8192,
        numGpuBlocksOverride: 4096,
        enablePrefixCaching: false,
        enableChunkedPrefill: true,
      }),
      {
        model: "deepseek-ai/DeepSeek-V3.2",
        dpSize: 8,
        maxBatchSize: 64,
        maxNumTokens: 8192,
        kvBlocks: 4096,
        prefixCaching: false,
        chunkedPrefill: true,
      },
    );
  });

  it("refuse one setting given under both names", async () => {
    await rejects(
      withMockerFlags({ maxNumSeqs: 4, maxBatchSize: 8 }),
      "USAGE",
      /--max-num-seqs and --max-batch-size/,
    );
  });

  it("read a TensorRT-LLM engine YAML, keys it sets only, flags winning", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "engine.yaml");
      await writeFile(
        file,
        "tensor_parallel_size: 8\nenable_attention_dp: true\nmax_batch_size: 32\nkv_cache_config:\n  enable_block_reuse: false\n  tokens_per_block: 64\n",
      );
      assert.deepEqual(await withMockerFlags({ extraEngineArgs: file, maxBatchSize: 16 }), {
        maxBatchSize: 16,
        prefixCaching: false,
        blockSize: 64,
        dpSize: 8,
      });
      await writeFile(file, "max_batch_sise: 32\n");
      await rejects(
        withMockerFlags({ extraEngineArgs: file }),
        "RECIPE_INVALID",
        /engine\.yaml[\s\S]*max_batch_sise/,
      );
      await rejects(
        withMockerFlags({ extraEngineArgs: join(dir, "nope.yaml") }),
        "RECIPE_PARSE",
        /nope\.yaml/,
      );
    });
  });

  it("leave the worker's role and KV hand-over to the disaggregation flags", async () => {
    assert.deepEqual(await withMockerFlags({ disaggregationMode: "prefill", kvTransferBandwidth: 50 }), {});
    assert.deepEqual(await withMockerFlags({ disaggregationMode: "aggregated" }), {});
  });
});
