import assert from "node:assert/strict";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { withTempDir, writeLines } from "../testing/fixtures.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { runInProcess } from "../testing/run-cli.ts";

/** A valid trace row; the corruptions below break one thing about it. */
const ROW = { timestamp: 0, input_length: 600, output_length: 4, hash_ids: [1, 2] };

/** Every way a trace line can be wrong that a user's file shows, one per generated case. */
const CORRUPTIONS: ((rng: ReturnType<typeof createRng>) => string)[] = [
  () => "{not json",
  () => JSON.stringify({ ...ROW, output_length: 1e12 }),
  () => JSON.stringify({ ...ROW, input_length: -5 }),
  () => JSON.stringify({ ...ROW, input_length: 2.5 }),
  () => JSON.stringify({ ...ROW, hash_ids: "1,2" }),
  () => JSON.stringify({ ...ROW, hash_ids: [1, -2] }),
  () => JSON.stringify({ ...ROW, hash_ids: [1] }),
  () => JSON.stringify({ ...ROW, timestamp: "soon" }),
  (rng) => {
    const rest: Record<string, unknown> = { ...ROW };
    delete rest[["input_length", "output_length", "hash_ids"][rng.int(3)]!];
    return JSON.stringify(rest);
  },
  () => JSON.stringify([ROW]),
  () => "null",
];

/** Exit 2, one `error[CODE]` line first, and no stack trace. */
function assertUserError(r: { code: number; stderr: string }, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /^(warning: .*\n)*error\[[A-Z_]+\]: /, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: a stack trace`);
}

describe("bad input gets error[CODE], exit 2, no stack trace and no output left", () => {
  it("refuses each known bad input", async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      await writeLines(dir, "trace.jsonl", [ROW, { ...ROW, timestamp: 10 }]);
      const trace = join(dir, "trace.jsonl");
      await writeFile(join(dir, "file"), "");
      const bomb = Array.from({ length: 7 }, (_, i) =>
        i === 0
          ? 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]'
          : `a${i}: &a${i} [${Array(9)
              .fill(`*a${i - 1}`)
              .join(",")}]`,
      ).join("\n");
      await writeFile(join(dir, "bomb.yaml"), bomb);
      const recipe = (edit: (t: string) => string, name: string) => {
        const file = join(dir, name);
        return writeFile(
          file,
          edit(TINY_RECIPE.replace("  source: mooncake/conversation", `  source: ${trace}`)),
        ).then(() => file);
      };
      const huge = await recipe(
        (t) => t.replace(`  source: ${trace}`, `  source: ${trace}\n  synthesis: { num_requests: 1e15 }`),
        "huge.yaml",
      );
      const tinyGpu = await recipe(
        (t) => t.replace("memory_per_gpu_gb: 192", "memory_per_gpu_gb: 0.001"),
        "gpu.yaml",
      );
      const ok = await recipe((t) => t, "ok.yaml");
      const bench = (...flags: string[]) => [
        "bench",
        "-m",
        "m",
        "--input-file",
        trace,
        "--artifact-dir",
        out,
        "--url",
        "http://127.0.0.1:1",
        ...flags,
      ];
      const cases: [string, string[]][] = [
        ["YAML alias bomb", ["recipe", "validate", join(dir, "bomb.yaml")]],
        ["report with one directory", ["report", dir]],
        ["report --out under /sys", ["report", dir, dir, "--out", "/sys/servelab-x"]],
        ["report --out under /proc", ["report", dir, dir, "--out", "/proc/servelab-x"]],
        ["report --out under a file", ["report", dir, dir, "--out", join(dir, "file", "sub")]],
        ["bench --url ftp://", bench("--url", "ftp://x")],
        ["bench --url http://[::1", bench("--url", "http://[::1")],
        ["bench -H without a colon", bench("-H", "nocolon")],
        ["bench -H with a bad name", bench("-H", "bad name:v")],
        ["bench --slice-duration 0", bench("--slice-duration", "0")],
        ["bench --slice-duration 1e-12", bench("--slice-duration", "1e-12")],
        ["bench --record-processors -1", bench("--record-processors", "-1")],
        ["trace analyze --cache-sizes 0", ["trace", "analyze", trace, "--cache-sizes", "0"]],
        [
          "synthesize --prefix-len-multiplier 1e9",
          [
            "trace",
            "synthesize",
            "--input",
            trace,
            "--prefix-len-multiplier",
            "1e9",
            "--output",
            join(out, "t.jsonl"),
          ],
        ],
        [
          "synthesize --num-requests 1e15",
          [
            "trace",
            "synthesize",
            "--input",
            trace,
            "--num-requests",
            "1e15",
            "--output",
            join(out, "t.jsonl"),
          ],
        ],
        ["sim --arm nope", ["sim", ok, "--arm", "nope", "--out", out]],
        ["recipe num_requests 1e15", ["recipe", "validate", huge]],
        [
          "recipe memory_per_gpu_gb 0.001",
          ["sim", tinyGpu, "--arm", "only", "--perf-model", "polynomial", "--out", out],
        ],
      ];
      for (const [what, args] of cases) {
        assertUserError(await runInProcess(args), what);
        assert.deepEqual(
          await readdir(dir).then((n) => n.filter((x) => x.includes("out"))),
          [],
          `${what}: left output`,
        );
      }
    });
  });

  it("refuses generated bad traces and bad numeric flags", async () => {
    await withTempDir(async (dir) => {
      const rng = createRng(7, "bad-input");
      for (let i = 0; i < 40; i++) {
        const corrupt = CORRUPTIONS[i % CORRUPTIONS.length]!(rng);
        const lines = [ROW, { ...ROW, timestamp: 5 }].map((r) => JSON.stringify(r));
        lines.splice(rng.int(lines.length + 1), 0, corrupt);
        const file = join(dir, `t${i}.jsonl`);
        await writeFile(file, `${lines.join("\n")}\n`);
        assertUserError(await runInProcess(["trace", "analyze", file]), `trace ${i}: ${corrupt}`);
      }
      const trace = join(dir, "good.jsonl");
      await writeLines(dir, "good.jsonl", [ROW]);
      for (const v of ["abc", "-5", "1e400", "NaN", "", "1.5"]) {
        const out = join(dir, "syn");
        const r = await runInProcess([
          "trace",
          "synthesize",
          "--input",
          trace,
          "--num-requests",
          v,
          "--output",
          join(out, "t.jsonl"),
        ]);
        assertUserError(r, `--num-requests ${JSON.stringify(v)}`);
        assert.deepEqual(await readdir(dir).then((n) => n.filter((x) => x === "syn")), []);
      }
    });
  });

  it("accepts a UTF-8 byte-order mark at the start of a trace and of a recipe", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "t.jsonl"), `\uFEFF${JSON.stringify(ROW)}\n`);
      const r = await runInProcess(["trace", "analyze", join(dir, "t.jsonl"), "--json"]);
      assert.equal(r.code, 0, r.stderr);
      await mkdir(join(dir, "r"));
      await writeFile(join(dir, "r", "tiny.yaml"), `\uFEFF${TINY_RECIPE}`);
      const v = await runInProcess(["recipe", "validate", join(dir, "r", "tiny.yaml")]);
      assert.equal(v.code, 0, v.stderr);
    });
  });
});
