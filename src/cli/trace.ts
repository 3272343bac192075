import { basename, dirname, extname, join, resolve } from "node:path";
import { type Command, Option } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { loadRecipe, recipeSynthesisOptions } from "../recipe/load.ts";
import { aiperfAnalysis } from "../trace/aiperf-analysis.ts";
import { analyzeRows } from "../trace/analyze.ts";
import { isDatasetName } from "../trace/datasets.ts";
import { analyzeTraceFile, synthesizeTraceFile } from "../trace/files.ts";
import { readTrace } from "../trace/reader.ts";
import { resolveTraceInput } from "../trace/resolve-dataset.ts";
import {
  DEFAULT_SYNTHESIS_OPTIONS,
  DEFAULT_TRACE_BLOCK_SIZE,
  SYNTHESIS_OPTION_KEYS,
  type SynthesisOptions,
} from "../trace/types.ts";
import { intOption, positiveListOption, positiveNumberOption } from "./options.ts";
import { startProgress } from "./progress.ts";
import { renderAnalysis } from "./trace-tables.ts";

const DEFAULT_INPUT = "mooncake/conversation";

const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);

function registerAnalyze(trace: Command): void {
  trace
    .command("analyze")
    .description("report a trace's request, length, block-reuse and prefix-cache statistics")
    .argument(
      "[file]",
      "Mooncake JSONL trace (.jsonl or .jsonl.gz), or a dataset name such as mooncake/conversation",
    )
    .option("--input-file <file>", "the same as the file argument (Dynamo datagen's name)")
    .option("--block-size <tokens>", "tokens per hash_ids block", intOption(1), DEFAULT_TRACE_BLOCK_SIZE)
    .option(
      "--cache-sizes <tokens,...>",
      "global LRU prefix-cache sizes to replay, in tokens (e.g. 1M,10M)",
      positiveListOption,
    )
    .option("--sort", "accept out-of-order timestamps and analyze in timestamp order (warns)")
    .option("--data-dir <dir>", "where named datasets are looked up first")
    .option("--json", "print the statistics as JSON")
    .addOption(
      new Option(
        "--format <format>",
        "text, json (servelab's statistics), or aiperf (the JSON of AIPerf's analyze-trace)",
      ).choices(["text", "json", "aiperf"] as const),
    )
    .option(
      "--output-file <file>",
      "with --format aiperf: write the JSON there (as AIPerf's analyze-trace does)",
    )
    .action(async (given, o) => {
      if (given !== undefined && o.inputFile !== undefined)
        throw new ServelabError("USAGE", "give the trace as the argument or as --input-file, not both");
      const input = given ?? o.inputFile;
      if (input === undefined)
        throw new ServelabError("USAGE", "trace analyze needs a trace: FILE or --input-file FILE");
      const file = await resolveTraceInput(input, o.dataDir === undefined ? {} : { dataDir: o.dataDir });
      if (o.format === "aiperf") {
        const stats = aiperfAnalysis(
          await readTrace(file, { blockSize: o.blockSize, sort: o.sort === true }),
        );
        const text = `${JSON.stringify(stats, null, 2)}\n`;
        if (o.outputFile === undefined) process.stdout.write(text);
        else {
          await writeFileAtomic(o.outputFile, [text]);
          process.stdout.write(`Analysis report saved to ${o.outputFile}\n`);
        }
        return;
      }
      if (o.outputFile !== undefined)
        throw new ServelabError("USAGE", "--output-file goes with --format aiperf");
      const progress = startProgress("analyze", 1, "bytes");
      const analysis = await analyzeTraceFile(file, {
        blockSize: o.blockSize,
        cacheSizesTokens: o.cacheSizes ?? [],
        sort: o.sort === true,
        onWarning: warn,
        onBytes: (done, total) => progress.update(done, total),
      }).finally(() => progress.stop());
      const json = o.json === true || o.format === "json";
      process.stdout.write(
        json ? `${JSON.stringify({ file, ...analysis }, null, 2)}\n` : renderAnalysis(file, analysis),
      );
    });
}

/**
 * The file name the seed recipe's perf.yaml expects from Dynamo's datagen
 * (`conversation_trace_synth_16.00x1+10.00_speedup1_maxisl110000.jsonl`: the two length multipliers with two
 * decimals, the root multiplier and the speed-up as written), with `_seed<N>` added only when a seed was given, so
 * the default name is the one upstream's commands use.
 */
export function defaultSynthesisName(input: string, o: SynthesisOptions, seedGiven: boolean): string {
  const stem = basename(input)
    .replace(/\.gz$/, "")
    .replace(extname(basename(input).replace(/\.gz$/, "")), "");
  const maxIsl = o.maxIsl === undefined ? "" : `_maxisl${o.maxIsl}`;
  const seed = seedGiven ? `_seed${o.seed}` : "";
  return `${stem}_synth_${o.prefixLenMultiplier.toFixed(2)}x${o.prefixRootMultiplier}+${o.promptLenMultiplier.toFixed(2)}_speedup${o.speedupRatio}${maxIsl}${seed}.jsonl`;
}

function registerSynthesize(trace: Command): void {
  trace
    .command("synthesize")
    .description(
      "synthesize a trace with the prefix structure of an input trace (Dynamo's prefix data generator)",
    )
    .option("--input <file>", `input trace file or dataset name (default: ${DEFAULT_INPUT})`)
    .option("--input-file <file>", "the same as --input (Dynamo datagen's name)")
    .option("--recipe <file>", "take the input, synthesis parameters and seed from a recipe's trace section")
    .option("--num-requests <n>", "requests to generate (default: 100000)", intOption(1))
    .option(
      "--speedup-ratio <x>",
      "divide inter-arrival gaps by this factor (default: 1)",
      positiveNumberOption,
    )
    .option("--prefix-len-multiplier <x>", "scale shared-prefix lengths (default: 1)", positiveNumberOption)
    .option(
      "--prefix-root-multiplier <n>",
      "independent copies of the prefix tree (default: 1)",
      intOption(1),
    )
    .option(
      "--prompt-len-multiplier <x>",
      "scale unique user-prompt lengths (default: 1)",
      positiveNumberOption,
    )
    .option("--osl-multiplier <x>", "scale output lengths (default: 1)", positiveNumberOption)
    .option("--max-isl <tokens>", "drop requests with a longer input", intOption(1))
    .option("--min-isl <tokens>", "drop requests with a shorter input", intOption(0))
    .option("--min-osl <tokens>", "raise shorter output lengths to this", intOption(0))
    .option("--max-osl <tokens>", "clip longer output lengths to this", intOption(1))
    .option("--block-size <tokens>", "tokens per hash_ids block (default: 512)", intOption(1))
    .option(
      "--seed <n>",
      "random seed; the same inputs and seed give byte-identical output (default: 0)",
      intOption(0),
    )
    .option(
      "--output <file>",
      "output JSONL (default: an upstream-style name, under results/traces/ with --recipe)",
    )
    .option("--output-file <file>", "the same as --output (Dynamo datagen's name)")
    .option("--sort", "accept an input with out-of-order timestamps (sorted, with a warning)")
    .option("--data-dir <dir>", "where named datasets are looked up first")
    .option("--json", "print the output trace's statistics as JSON")
    .option("--quiet", "print only the output path")
    .action(async (o) => {
      let base: SynthesisOptions = DEFAULT_SYNTHESIS_OPTIONS;
      if (o.input !== undefined && o.inputFile !== undefined)
        throw new ServelabError("USAGE", "--input and --input-file name the same thing; give one");
      if (o.output !== undefined && o.outputFile !== undefined)
        throw new ServelabError("USAGE", "--output and --output-file name the same thing; give one");
      let input = o.input ?? o.inputFile;
      if (o.recipe !== undefined) {
        const recipe = await loadRecipe(o.recipe);
        base = recipeSynthesisOptions(recipe) ?? { ...DEFAULT_SYNTHESIS_OPTIONS, seed: recipe.trace.seed };
        // A recipe's trace path is relative to the recipe file, so recipes can travel with their traces.
        input ??= isDatasetName(recipe.trace.source)
          ? recipe.trace.source
          : resolve(dirname(o.recipe), recipe.trace.source);
      }
      // Flags carry the options' own names; a flag given on the command line overrides the recipe.
      const opts: SynthesisOptions = { ...base };
      for (const key of SYNTHESIS_OPTION_KEYS) {
        if (o[key] !== undefined) Object.assign(opts, { [key]: o[key] });
      }
      input ??= DEFAULT_INPUT;
      const file = await resolveTraceInput(input, o.dataDir === undefined ? {} : { dataDir: o.dataDir });
      const output =
        o.output ??
        o.outputFile ??
        join(
          o.recipe !== undefined ? join("results", "traces") : ".",
          defaultSynthesisName(file, opts, o.seed !== undefined || o.recipe !== undefined),
        );
      const progress = startProgress("synthesize", opts.numRequests, "requests");
      const result = await synthesizeTraceFile(file, output, opts, {
        sort: o.sort === true,
        onWarning: warn,
        onProgress: (done) => progress.update(done),
      }).finally(() => progress.stop());
      if (o.quiet) {
        process.stdout.write(`${output}\n`);
        return;
      }
      const analysis = analyzeRows(result.rows, { blockSize: opts.blockSize });
      const { sampled, dropped, coreNodes, leaves } = result.stats;
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify({ file: output, input: file, options: opts, synthesis: result.stats, ...analysis }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `input ${file}: core radix tree of ${coreNodes} nodes, ${leaves} unique suffixes\n` +
          `sampled ${sampled} requests, dropped ${dropped} by the ISL filters, wrote ${result.rows.length}\n` +
          renderAnalysis(output, analysis),
      );
    });
}

export function registerTraceCommands(program: Command): void {
  const trace = program.command("trace").description("analyze and synthesize Mooncake-format request traces");
  registerAnalyze(trace);
  registerSynthesize(trace);
}
