import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CommanderError } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { REPO_ROOT } from "../testing/fixtures.ts";
import { FOUNDING_RECIPE } from "../testing/recipes.ts";
import { parseWorkerArgs, spawnWorkerCli } from "../testing/worker-cli.ts";

/** The body as JSON, typed loosely for assertions (Response.json() is typed unknown). */
const jsonOf = async (res: Response) => JSON.parse(await res.text());

const parse = parseWorkerArgs;

interface Running {
  child: ChildProcess;
  url: string;
  firstLine: string;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** `servelab worker ...` in its own process, resolved once it prints its URL. */
function spawnWorker(args: string[]): Promise<Running> {
  const child = spawnWorkerCli(args);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    stderr += d;
  });
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`worker did not start: ${stderr}`));
    }, 20_000);
    child.stdout!.on("data", (d: string) => {
      stdout += d;
      const m = /^servelab worker: serving .* at (http:\/\/\S+)\/v1 /m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, firstLine: stdout.split("\n")[0]!, exit });
      }
    });
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before serving: ${stderr}`));
    });
  });
}

describe("servelab worker: options", () => {
  for (const [args, message] of [
    [["--port", "70000"], /--port.*at most 65535/],
    [["--port", "eighty"], /--port.*expected an integer/],
    [["--speedup-ratio", "0"], /--speedup-ratio.*positive number/],
    [["--dp-size", "0"], /--dp-size.*at least 1/],
    [["--kv-blocks", "1.5"], /--kv-blocks.*expected an integer/],
    [["--group", "router"], /--group.*Allowed choices are workers, prefill, decode/],
    [["--perf-model", "fast"], /--perf-model.*Allowed choices are auto, table, polynomial/],
    [["--host", " "], /--host.*expected a host/],
    [["--max-body-bytes", "0"], /--max-body-bytes.*at least 1/],
  ] as const) {
    it(`refuses ${args.join(" ")}`, async () => {
      const { error, stderr } = await parse([...args]);
      assert.ok(error instanceof CommanderError, String(error));
      assert.notEqual(error.exitCode, 0);
      assert.match(stderr, message);
    });
  }

  it("refuses recipe-only flags without a recipe, and a missing recipe file", async () => {
    const { error } = await parse(["--arm", "a", "--port", "0"]);
    assert.ok(error instanceof ServelabError && error.code === "USAGE", String(error));
    const missing = await parse(["--recipe", join(REPO_ROOT, "no-such-recipe.yaml")]);
    assert.ok(missing.error instanceof ServelabError && missing.error.code === "FILE_NOT_FOUND");
  });

  it("reports a port that is taken as a usage error", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    try {
      const port = (taken.address() as AddressInfo).port;
      const { error } = await parse(["--port", String(port)]);
      assert.ok(error instanceof ServelabError && error.code === "USAGE", String(error));
      assert.match(error.message, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});

describe("servelab worker: serving", () => {
  it("prints its URL, serves chat and completions, and exits cleanly on SIGINT", async () => {
    const w = await spawnWorker(["--port", "0", "--speedup-ratio", "100", "--model", "cli-model"]);
    try {
      assert.match(w.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(w.firstLine, /serving cli-model .*Dynamo mocker defaults; polynomial step model/);
      const chat = await fetch(`${w.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({
          model: "cli-model",
          messages: [{ role: "user", content: "Hello there" }],
          max_completion_tokens: 3,
        }),
      });
      assert.equal(chat.status, 200);
      const body = await jsonOf(chat);
      assert.equal(body.usage.completion_tokens, 3);
      assert.equal(body.usage.prompt_tokens, 2);
    } finally {
      w.child.kill("SIGINT");
    }
    const { code, stdout } = await w.exit;
    assert.equal(code, 0);
    assert.match(stdout, /SIGINT, shutting down/);
  });

  it("serves a recipe arm's worker group and exits cleanly on SIGTERM", async () => {
    const w = await spawnWorker([
      "--recipe",
      FOUNDING_RECIPE,
      "--arm",
      "disagg-kv",
      "--group",
      "prefill",
      "--port",
      "0",
      "--speedup-ratio",
      "50",
    ]);
    try {
      assert.match(w.firstLine, /serving nvidia\/DeepSeek-V3\.2-NVFP4 /);
      assert.match(
        w.firstLine,
        /arm disagg-kv, group prefill; deepseek-v3\.2-nvfp4\/gb200\/dep8\/prefill \(nominal\) step model/,
      );
      assert.match(w.firstLine, /dp 8, batch 32, 8192 tokens\/step, \d+ KV blocks of 64/);
      const health = await jsonOf(await fetch(`${w.url}/health`));
      assert.equal(health.ranks.length, 8);
    } finally {
      w.child.kill("SIGTERM");
    }
    const { code, stdout } = await w.exit;
    assert.equal(code, 0);
    assert.match(stdout, /SIGTERM, shutting down/);
  });
});
