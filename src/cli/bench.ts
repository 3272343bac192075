import { randomInt } from "node:crypto";
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { parseHttpUrl } from "../io/http-url.ts";
import { parseExtraInputs } from "../loadgen/openai-request.ts";
import { checkTokenizer, SHIPPED_TOKENIZER_NAMES } from "../loadgen/prompts.ts";
import { countingThreads } from "../loadgen/request-builder.ts";
import type { LoadMode } from "../loadgen/run-bench.ts";
import { checkServerMetricsUrls, serverMetricsOptionsFromEnv } from "../loadgen/server-metrics.ts";
import { syntheticRows } from "../loadgen/synthetic-rows.ts";
import { checkErrorRate, DEFAULT_MAX_ERROR_RATE, parseMaxErrorRate } from "../metrics/error-rate.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import { sliceDurationNs } from "../metrics/timeslices.ts";
import { readTrace } from "../trace/reader.ts";
import { resolveTraceInput } from "../trace/resolve-dataset.ts";
import { type BenchUi, startBenchDisplay } from "./bench-display.ts";
import { intOption, positiveNumberOption } from "./options.ts";
import { shellCommand } from "./shell-command.ts";

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** An HTTP header field name: RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHeader(text: string): [string, string] {
  const at = text.indexOf(":");
  if (at <= 0) throw new ServelabError("USAGE", `-H/--header expects "Name: value", got '${text}'`);
  const name = text.slice(0, at).trim();
  const value = text.slice(at + 1).trim();
  if (!HEADER_NAME.test(name))
    throw new ServelabError("USAGE", `-H/--header: '${name}' is not a valid header name`);
  if (/[\r\n\0]/.test(value))
    throw new ServelabError("USAGE", `-H/--header ${name}: the value holds a line break`);
  return [name, value];
}

/** AIPerf's default artifact directory name, used when --artifact-dir is not given. */
function defaultArtifactDir(model: string, endpoint: string, mode: LoadMode): string {
  const stimulus =
    mode.kind === "fixed"
      ? "fixed_schedule"
      : mode.kind === "concurrency"
        ? `concurrency${mode.concurrency}`
        : [`request_rate${mode.rate}`, ...(mode.concurrency ? [`concurrency${mode.concurrency}`] : [])].join(
            "-",
          );
  return join("artifacts", `${model.replaceAll("/", "_")}-openai-${endpoint}-${stimulus}`);
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const UI_TYPES = ["dashboard", "simple", "none"] as const;
const EXPORT_LEVELS = ["summary", "records", "raw"] as const;

/** `--slice-duration`: seconds, positive and at least a nanosecond. */
function sliceDurationOption(text: string): number {
  const s = positiveNumberOption(text);
  try {
    sliceDurationNs(s);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return s;
}

function nonNegativeNumber(text: string): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < 0)
    throw new InvalidArgumentError(`expected a number >= 0, got '${text}'`);
  return v;
}

function checkedUi(ui: string | undefined, uiType: string | undefined): BenchUi {
  if (ui !== undefined && uiType !== undefined && ui !== uiType)
    throw new ServelabError("USAGE", "--ui and --ui-type are the same setting; give one");
  return (ui ?? uiType ?? (process.stderr.isTTY ? "dashboard" : "none")) as BenchUi;
}

function checkedExportLevel(a: string | undefined, b: string | undefined): "summary" | "records" | "raw" {
  if (a !== undefined && b !== undefined && a !== b)
    throw new ServelabError(
      "USAGE",
      "--profile-export-level and --export-level are the same setting; give one",
    );
  return (a ?? b ?? "records") as "summary" | "records" | "raw";
}

export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    // AIPerf's own subcommand name, so `aiperf profile …` command lines run as `servelab profile …`.
    .alias("profile")
    .description("replay requests against an OpenAI-compatible endpoint and measure them like AIPerf")
    .requiredOption(
      "-m, --model <names>",
      "model name sent in each request (a comma list: chosen per request)",
    )
    .addOption(
      new Option(
        "--model-selection-strategy <strategy>",
        "with several models: in turn, or at random (seeded)",
      )
        .choices(["round_robin", "random"] as const)
        .default("round_robin"),
    )
    .option(
      "-u, --url <url>",
      "server URL (repeatable: requests go round-robin; default http://localhost:8000)",
      collect,
    )
    .addOption(
      new Option("--endpoint-type <type>", "API").choices(["chat", "completions"] as const).default("chat"),
    )
    .option("--streaming", "stream responses (needed for TTFT and ITL)")
    .option("--input-file <file>", "Mooncake JSONL trace (or a dataset name); or use the synthetic options")
    .option(
      "--synthetic-input-tokens-mean <n>",
      "synthetic prompts of about this many tokens instead of a trace (AIPerf's synthetic dataset)",
      intOption(1),
    )
    .option(
      "--synthetic-input-tokens-stddev <n>",
      "spread of the synthetic prompt lengths",
      nonNegativeNumber,
      0,
    )
    .option(
      "--output-tokens-mean <n>",
      "output tokens asked for per synthetic request (max_tokens)",
      intOption(1),
    )
    .option("--output-tokens-stddev <n>", "spread of the synthetic output lengths", nonNegativeNumber, 0)
    .option("--num-dataset-entries <n>", "distinct synthetic prompts, sent in turn", intOption(1), 100)
    .option(
      "--tokenizer <name>",
      `tokenizer for prompts and token counts: a tokenizer.json (or its directory), or ${SHIPPED_TOKENIZER_NAMES.join(", ")} (the DeepSeek-V3 tokenizer servelab ships); nothing is downloaded`,
    )
    .addOption(
      new Option(
        "--ui <type>",
        "live display: dashboard (progress, in flight, running TTFT/ITL), simple, none",
      ).choices(UI_TYPES),
    )
    .addOption(new Option("--ui-type <type>", "the same as --ui").choices(UI_TYPES))
    .option("--workers-max <n>", "most connections open to the server at once", intOption(1))
    .option(
      "--record-processors <n>",
      "threads that count tokens: responses, and prompts as AIPerf does (their text encoded again); at most cores - 1; 0: a synthesized prompt's length is the row's (default 1)",
      intOption(0),
    )
    .addOption(
      new Option(
        "--profile-export-level <level>",
        "summary (summary files only), records (also profile_export.jsonl), raw (also profile_export_raw.jsonl: requests and responses)",
      ).choices(EXPORT_LEVELS),
    )
    .addOption(
      new Option("--export-level <level>", "the same as --profile-export-level").choices(EXPORT_LEVELS),
    )
    .option(
      "--server-metrics <urls...>",
      "more Prometheus endpoints to scrape besides each --url's /metrics (scraped by default), into server_metrics_export.json/.csv (aggregated) and .jsonl (each changed scrape)",
    )
    .option("--no-server-metrics", "scrape no server metrics, not even each --url's /metrics")
    .addOption(
      new Option("--custom-dataset-type <type>", "input format")
        .choices(["mooncake_trace"] as const)
        .default("mooncake_trace"),
    )
    .option("--fixed-schedule", "send each row at its timestamp (the default when rows have timestamps)")
    .option("--no-fixed-schedule", "ignore the rows' timestamps: send them closed-loop, or at --request-rate")
    .option("--fixed-schedule-auto-offset", "start the schedule at the first timestamp")
    .option("--fixed-schedule-start-offset <ms>", "skip rows before this timestamp", intOption(0))
    .option("--fixed-schedule-end-offset <ms>", "skip rows after this timestamp", intOption(0))
    .option(
      "--concurrency <n>",
      "requests in flight (alone: closed loop; with --request-rate: a cap)",
      intOption(1),
    )
    .option("--request-rate <rps>", "requests per second", positiveNumberOption)
    .addOption(
      new Option("--request-rate-mode <mode>", "arrival process")
        .choices(["poisson", "constant"] as const)
        .default("poisson"),
    )
    .option(
      "--request-count <n>",
      "requests to send in rate/concurrency mode (default: the rows)",
      intOption(1),
    )
    .option("--warmup-request-count <n>", "requests sent before measuring, not reported", intOption(0), 0)
    .option("--benchmark-duration <s>", "stop sending after this many seconds", positiveNumberOption)
    .option(
      "--slice-duration <s>",
      "also write profile_export_aiperf_timeslices.json/.csv: the metrics of each S-second wall-clock window of request starts (meant for --benchmark-duration)",
      sliceDurationOption,
    )
    .option(
      "--benchmark-grace-period <s>",
      "time in-flight requests get after the duration",
      positiveNumberOption,
      30,
    )
    .option("--extra-inputs <k:v>", "extra request-body fields (repeatable, or a JSON object)", collect)
    .option("-H, --header <name:value>", "extra HTTP header (repeatable)", collect)
    .option("--api-key <key>", "sent as a bearer token")
    .option(
      "--request-timeout-seconds <s>",
      "per-request timeout (default: 21600, AIPerf's)",
      positiveNumberOption,
      21_600,
    )
    .option("--goodput <slos>", 'SLOs, e.g. "time_to_first_token:20000 inter_token_latency:50"')
    .option("--artifact-dir <dir>", "where the exports go")
    .option(
      "--max-error-rate <fraction>",
      `exit with error[RUN_FAILED] when more than this share of requests failed (or all did)`,
      parseMaxErrorRate,
      DEFAULT_MAX_ERROR_RATE,
    )
    .option(
      "--no-inputs-json",
      "do not write inputs.json (every request body as sent; large for long prompts)",
    )
    .option(
      "--random-seed <n>",
      "seed for prompts and Poisson arrivals (default: drawn at random, as AIPerf does, and printed)",
      intOption(0),
    )
    .option("--prompt-input-tokens-block-size <n>", "tokens per hash_ids block", intOption(1), 512)
    .option("--use-server-token-count", "count tokens from the server's usage instead of the tokenizer")
    .action(async (o) => {
      // Flags are checked before anything loads or any file is written.
      const urls = (o.url ?? ["http://localhost:8000"]).map((u) => {
        parseHttpUrl(u, "--url");
        // As given, with a scheme added to a bare host:port: the path stays the user's.
        return u.includes("://") ? u : `http://${u}`;
      });
      const url = urls[0]!;
      const models = o.model.split(",").map((m) => m.trim());
      if (models.some((m) => m === ""))
        throw new ServelabError("USAGE", `-m/--model '${o.model}' has an empty name in its list`);
      const headers = Object.fromEntries((o.header ?? []).map(parseHeader));
      // Loaded here, not with the CLI: the tokenizer and the load generator take a while to load.
      const [{ runBench, connectionLimitFromEnv }, { renderConsoleReport }] = await Promise.all([
        import("../loadgen/run-bench.ts"),
        import("../metrics/console-table.ts"),
      ]);
      const randomSeed = o.randomSeed ?? randomInt(2 ** 31);
      if (o.randomSeed === undefined)
        process.stderr.write(`random seed: ${randomSeed} (--random-seed ${randomSeed} repeats this run)\n`);
      const ui = checkedUi(o.ui, o.uiType);
      if (Array.isArray(o.serverMetrics)) checkServerMetricsUrls(o.serverMetrics);
      serverMetricsOptionsFromEnv(process.env);
      const exportLevel = checkedExportLevel(o.profileExportLevel, o.exportLevel);
      if (o.tokenizer !== undefined) checkTokenizer(o.tokenizer);
      const synthetic = o.syntheticInputTokensMean !== undefined;
      if (synthetic === (o.inputFile !== undefined))
        throw new ServelabError(
          "USAGE",
          synthetic
            ? "--input-file and --synthetic-input-tokens-mean both say what to send; give one"
            : "nothing to send: give --input-file (a trace) or --synthetic-input-tokens-mean (synthetic prompts)",
        );
      const rows = synthetic
        ? syntheticRows({
            inputMean: o.syntheticInputTokensMean!,
            inputStddev: o.syntheticInputTokensStddev,
            outputMean: o.outputTokensMean,
            outputStddev: o.outputTokensStddev,
            entries: o.numDatasetEntries,
            blockSize: o.promptInputTokensBlockSize,
            seed: randomSeed,
          })
        : await readTrace(await resolveTraceInput(o.inputFile!), { blockSize: o.promptInputTokensBlockSize });
      const timed = rows.some((r) => r.timestamp !== undefined);
      // --no-fixed-schedule replays a timestamped trace closed-loop (or at --request-rate) instead.
      const fixed =
        o.fixedSchedule === true ||
        (o.fixedSchedule !== false && o.requestRate === undefined && o.concurrency === undefined && timed);
      if (fixed && (o.requestRate !== undefined || o.concurrency !== undefined)) {
        throw new ServelabError(
          "USAGE",
          "--fixed-schedule cannot be combined with --request-rate or --concurrency",
        );
      }
      if (o.benchmarkDuration !== undefined && o.requestCount !== undefined) {
        throw new ServelabError("USAGE", "--request-count and --benchmark-duration cannot be combined");
      }
      // AIPerf's default for synthetic prompts: max(10, 2 × concurrency); a trace is sent once over.
      const count = o.requestCount ?? (synthetic ? Math.max(10, 2 * (o.concurrency ?? 1)) : rows.length);
      const mode: LoadMode = fixed
        ? {
            kind: "fixed",
            autoOffset: o.fixedScheduleAutoOffset === true,
            ...(o.fixedScheduleStartOffset === undefined
              ? {}
              : { startOffsetMs: o.fixedScheduleStartOffset }),
            ...(o.fixedScheduleEndOffset === undefined ? {} : { endOffsetMs: o.fixedScheduleEndOffset }),
          }
        : o.requestRate !== undefined
          ? {
              kind: "rate",
              rate: o.requestRate,
              arrivals: o.requestRateMode,
              // With a duration, only the requests due before it ends are scheduled.
              count:
                o.benchmarkDuration === undefined ? count : Math.ceil(o.requestRate * o.benchmarkDuration),
              ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
            }
          : {
              kind: "concurrency",
              concurrency: o.concurrency ?? 1,
              // A closed loop with a duration runs until it ends.
              count: o.benchmarkDuration === undefined ? count : Number.POSITIVE_INFINITY,
            };
      const prompts = {
        blockSize: o.promptInputTokensBlockSize,
        seed: randomSeed,
        tokenizer: o.tokenizer,
        recordProcessors: o.recordProcessors,
      };
      const counting = countingThreads(o.recordProcessors);
      if (o.recordProcessors !== undefined && o.recordProcessors > counting)
        process.stderr.write(
          `note: --record-processors ${o.recordProcessors}: ${counting} counting thread${counting === 1 ? "" : "s"} on this machine (one core stays with the sender)\n`,
        );
      const artifactDir =
        o.artifactDir ??
        defaultArtifactDir(models.length > 1 ? `${models[0]}_multi` : models[0]!, o.endpointType, mode);
      const stop = new AbortController();
      const cancel = new AbortController();
      // First Ctrl-C (or SIGTERM, SIGHUP): stop sending and let in-flight requests finish; second: cancel them too.
      // Either way every finished record is in profile_export.jsonl and the summary files are written.
      const onSignal = () => (stop.signal.aborted ? cancel.abort() : stop.abort());
      for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
      // A run bounded by its duration has no request count to show progress against.
      const progress = startBenchDisplay(
        ui,
        o.benchmarkDuration !== undefined ? undefined : mode.kind === "fixed" ? rows.length : count,
      );
      const cliCommand = shellCommand(["servelab", ...process.argv.slice(2)]);
      const slos = o.goodput === undefined ? [] : parseGoodput(o.goodput);
      try {
        const result = await runBench(
          {
            url,
            sliceDurationS: o.sliceDuration,
            endpoint: o.endpointType,
            model: models[0]!,
            moreModels: models.slice(1),
            modelSelection: o.modelSelectionStrategy,
            moreUrls: urls.slice(1),
            seed: randomSeed,
            streaming: o.streaming === true,
            rows,
            mode,
            warmupCount: o.warmupRequestCount,
            connectionLimit: Math.min(connectionLimitFromEnv(), o.workersMax ?? Number.POSITIVE_INFINITY),
            durationS: o.benchmarkDuration,
            gracePeriodS: o.benchmarkGracePeriod,
            timeoutS: o.requestTimeoutSeconds,
            extraInputs: parseExtraInputs(o.extraInputs ?? []),
            headers,
            apiKey: o.apiKey,
            goodput: slos,
            artifactDir,
            writeInputs: o.inputsJson,
            useServerTokenCount: o.useServerTokenCount === true,
            cliCommand,
            // The rest of input_config comes from the run itself (see runBench).
            inputConfig: {
              input: synthetic
                ? {
                    synthetic_input_tokens_mean: o.syntheticInputTokensMean,
                    synthetic_input_tokens_stddev: o.syntheticInputTokensStddev,
                    output_tokens_mean: o.outputTokensMean,
                    output_tokens_stddev: o.outputTokensStddev,
                    num_dataset_entries: o.numDatasetEntries,
                    random_seed: randomSeed,
                  }
                : { file: o.inputFile, custom_dataset_type: o.customDatasetType, random_seed: randomSeed },
              ...(o.tokenizer === undefined ? {} : { tokenizer: { name: o.tokenizer } }),
              output: {
                export_level: exportLevel,
                ...(o.sliceDuration === undefined ? {} : { slice_duration: o.sliceDuration }),
              },
            },
            exportRecords: exportLevel !== "summary",
            exportRaw: exportLevel === "raw",
            serverMetrics: o.serverMetrics === false ? [] : (o.serverMetrics ?? []),
            serverMetricsEnabled: o.serverMetrics !== false,
            stop: stop.signal,
            cancel: cancel.signal,
            onProgress: (p) => progress.update(p),
            onFinished: (rec) => progress.record(rec),
          },
          { prompts },
        );
        progress.stop();
        process.stdout.write(
          renderConsoleReport(result.summary, result.errors, {
            cliCommand,
            csvPath: result.files.csv,
            jsonPath: result.files.json,
          }),
        );
        if (result.lag) {
          process.stdout.write(
            `Schedule lag: p50 ${result.lag.p50.toFixed(3)} ms, p99 ${result.lag.p99.toFixed(3)} ms, max ${result.lag.max.toFixed(3)} ms\n`,
          );
        }
        if (result.cancelled) process.stdout.write(`Stopped early: ${result.sent} requests sent.\n`);
        // The files are written; a run that mostly failed still exits as a failure.
        checkErrorRate(
          `the run against ${urls.join(", ")}`,
          // AIPerf counts the requests that succeeded and those that failed apart.
          (result.summary.request_count?.avg ?? 0) + (result.summary.error_request_count?.avg ?? 0),
          result.errors,
          o.maxErrorRate,
        );
      } finally {
        progress.stop();
        for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
      }
    });
}
