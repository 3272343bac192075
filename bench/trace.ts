/**
 * Trace-toolkit benchmark: analyze the Mooncake conversation trace, and synthesize the founding recipe's trace
 * from it (read, synthesize, write), in-process. Prints the median of several runs; `--json` prints one object.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRecipe, recipeSynthesisOptions } from "../src/recipe/load.ts";
import { analyzeTraceFile, synthesizeTraceFile } from "../src/trace/files.ts";
import { resolveTraceInput } from "../src/trace/resolve-dataset.ts";

const RUNS = 5;
const json = process.argv.includes("--json");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

const recipe = await loadRecipe(join(import.meta.dirname, "../recipes/dsv32-wideep-routing.yaml"));
const options = recipeSynthesisOptions(recipe);
if (options === undefined) throw new Error("the founding recipe has no synthesis section");
const input = await resolveTraceInput(recipe.trace.source);
const dir = await mkdtemp(join(tmpdir(), "servelab-bench-"));
try {
  const analyze: number[] = [];
  const synthesize: number[] = [];
  let requests = 0;
  for (let i = 0; i < RUNS; i++) {
    analyze.push((await timed(() => analyzeTraceFile(input))).seconds);
    const run = await timed(() => synthesizeTraceFile(input, join(dir, "trace.jsonl"), options));
    synthesize.push(run.seconds);
    requests = run.value.rows.length;
  }
  const result = {
    analyze_s: Number(median(analyze).toFixed(3)),
    synthesize_s: Number(median(synthesize).toFixed(3)),
    requests,
  };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      `analyze ${input}: ${result.analyze_s} s (target < 1 s)\n` +
        `synthesize ${requests} requests for ${recipe.name}: ${result.synthesize_s} s (target < 3 s)\n` +
        `median of ${RUNS} runs\n`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
