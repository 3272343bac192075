import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServelabError } from "../errors.ts";
import { checkErrorRate, parseMaxErrorRate } from "../metrics/error-rate.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { runCli } from "../testing/run-cli.ts";

const rows = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    timestamp: i * 5,
    input_length: 100,
    output_length: 3,
    hash_ids: [i],
  }));

/** A server that answers every request with HTTP 503. */
async function failingServer() {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "overloaded", type: "ServiceUnavailable" } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

describe("a failed run never looks like a result", () => {
  it("bench writes its files, then exits with error[RUN_FAILED] and the errors by type when every request failed", async () => {
    const server = await failingServer();
    try {
      await withTempDir(async (dir) => {
        await writeLines(dir, "trace.jsonl", rows(6));
        const out = join(dir, "out");
        const r = await runCli([
          "bench",
          "--url",
          server.url,
          "-m",
          "m",
          "--input-file",
          join(dir, "trace.jsonl"),
          "--custom-dataset-type",
          "mooncake_trace",
          "--artifact-dir",
          out,
          "--no-inputs-json",
        ]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^error\[RUN_FAILED\]: the run against .* every request failed \(6 of 6\)/m);
        assert.match(r.stderr, /6 × 503 /);
        const files = await readdir(out);
        assert.ok(files.includes("profile_export_aiperf.json") && !files.includes("servelab_incomplete"));
        assert.equal(
          (await readFile(join(out, "profile_export.jsonl"), "utf8")).trim().split("\n").length,
          6,
        );
      });
    } finally {
      server.close();
    }
  });

  it("tolerates failures up to --max-error-rate and refuses a rate that is not a fraction", () => {
    const errors = [{ error_details: { code: 503, type: "ServiceUnavailable", message: "busy" }, count: 1 }];
    checkErrorRate("run", 10, errors, 0.1);
    assert.throws(
      () => checkErrorRate("run", 5, errors, 0.1),
      (e: unknown) =>
        e instanceof ServelabError &&
        e.code === "RUN_FAILED" &&
        /1 of 5 requests failed \(20\.0 %/.test(e.message),
    );
    // All failed is a failure whatever the tolerance.
    assert.throws(() => checkErrorRate("run", 1, errors, 1), /every request failed/);
    assert.throws(() => checkErrorRate("run", 0, [], 1), /no request was measured/);
    assert.equal(parseMaxErrorRate("0.25"), 0.25);
    for (const bad of ["", "x", "-0.1", "1.5"])
      assert.throws(() => parseMaxErrorRate(bad), /--max-error-rate/);
  });
});
