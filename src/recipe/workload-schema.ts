import { z } from "zod";
import { GOODPUT_METRIC_TAGS, type GoodputMetricTag } from "../metrics/goodput.ts";
import {
  DEFAULT_SYNTHESIS_OPTIONS,
  DEFAULT_TRACE_BLOCK_SIZE,
  MAX_SYNTHESIZED_REQUESTS,
} from "../trace/types.ts";
import { nonNegativeInt, positiveInt, section, whenSectionValid } from "./section.ts";

/*
 * What load the arms face: the trace (and how to stretch it) and how the client replays it. Trace knobs carry the
 * names of Dynamo's prefix data generator (`datagen synthesize --prefix-len-multiplier ...`), benchmark knobs those
 * of AIPerf (`aiperf profile --fixed-schedule ...`), both in snake_case.
 */

const synthesisSchema = section({
  num_requests: positiveInt().max(MAX_SYNTHESIZED_REQUESTS).default(DEFAULT_SYNTHESIS_OPTIONS.numRequests),
  speedup_ratio: z.number().positive().default(DEFAULT_SYNTHESIS_OPTIONS.speedupRatio),
  prefix_len_multiplier: z.number().positive().default(DEFAULT_SYNTHESIS_OPTIONS.prefixLenMultiplier),
  // Whole copies of the prefix tree, so an integer.
  prefix_root_multiplier: positiveInt().default(DEFAULT_SYNTHESIS_OPTIONS.prefixRootMultiplier),
  prompt_len_multiplier: z.number().positive().default(DEFAULT_SYNTHESIS_OPTIONS.promptLenMultiplier),
  osl_multiplier: z.number().positive().default(DEFAULT_SYNTHESIS_OPTIONS.oslMultiplier),
  // ISL bounds drop sampled requests (time still advances, so the rate falls); OSL bounds clip.
  max_isl: positiveInt().optional(),
  min_isl: positiveInt().optional(),
  min_osl: nonNegativeInt().optional(),
  max_osl: positiveInt().optional(),
  block_size: positiveInt().default(DEFAULT_SYNTHESIS_OPTIONS.blockSize),
}).superRefine((s, ctx) => {
  if (s.min_isl !== undefined && s.max_isl !== undefined && s.min_isl > s.max_isl) {
    ctx.addIssue({
      code: "custom",
      path: ["min_isl"],
      message: `min_isl (${s.min_isl}) exceeds max_isl (${s.max_isl}): every request would be dropped`,
    });
  }
  if (s.min_osl !== undefined && s.max_osl !== undefined && s.min_osl > s.max_osl) {
    ctx.addIssue({
      code: "custom",
      path: ["min_osl"],
      message: `min_osl (${s.min_osl}) exceeds max_osl (${s.max_osl})`,
    });
  }
}, whenSectionValid);

export const traceSchema = section({
  /** A registered dataset name (`mooncake/conversation`) or a path to a Mooncake-format JSONL file. */
  source: z.string().min(1),
  /** Omitted: replay the source as it is. */
  synthesis: synthesisSchema.optional(),
  seed: z.int().min(0).default(DEFAULT_SYNTHESIS_OPTIONS.seed),
});

/** When a simulated run starts unless the recipe or `--start-time` says otherwise. */
export const DEFAULT_SIM_START_TIME = "2026-01-01T00:00:00Z";

const commonBenchmarkFields = {
  // Metric → threshold in the metric's display unit (ms for latencies, tokens/s/user for throughput); a request is
  // good when it meets all of them. Empty: no goodput is reported.
  goodput: z
    .partialRecord(z.enum(GOODPUT_METRIC_TAGS), z.number().positive(), {
      // The declared issue type omits it, but an enum-keyed record reports a stray key as `unrecognized_keys`.
      error: (issue) =>
        (issue.code as string) === "unrecognized_keys"
          ? `unknown metric; allowed here: ${GOODPUT_METRIC_TAGS.join(", ")}`
          : undefined,
    })
    .default({}),
  // Tokens each trace hash id expands to; must match the trace's block size or shared prefixes misalign.
  prompt_block_size: positiveInt().default(DEFAULT_TRACE_BLOCK_SIZE),
  // TTFT and ITL only exist for streamed responses.
  streaming: z.boolean().default(true),
  random_seed: z.int().min(0).default(42),
  // AIPerf's own default moved between releases (600 s, then 21,600 s), so a recipe pins one.
  request_timeout_s: z.number().positive().default(1000),
  // Wall-clock time a simulated run starts at: its records carry epoch nanoseconds from here, as a real run's do.
  // A fixed default keeps reruns byte-identical.
  start_time: z.iso.datetime({ offset: true }).default(DEFAULT_SIM_START_TIME),
};

const fixedScheduleSchema = section({
  mode: z.literal("fixed_schedule"),
  // Start the clock at the first request's timestamp instead of at 0.
  auto_offset: z.boolean().default(false),
  // Inclusive window on trace timestamps, in ms; rows outside are not sent.
  start_offset_ms: nonNegativeInt().optional(),
  end_offset_ms: nonNegativeInt().optional(),
  ...commonBenchmarkFields,
}).superRefine((b, ctx) => {
  if (b.auto_offset && b.start_offset_ms !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["start_offset_ms"],
      message: "auto_offset and start_offset_ms both set the schedule's zero; use one",
    });
  }
  if (
    b.start_offset_ms !== undefined &&
    b.end_offset_ms !== undefined &&
    b.start_offset_ms > b.end_offset_ms
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["end_offset_ms"],
      message: `end_offset_ms (${b.end_offset_ms}) is before start_offset_ms (${b.start_offset_ms})`,
    });
  }
}, whenSectionValid);

const concurrencySchema = section({
  mode: z.literal("concurrency"),
  // Closed loop: this many requests in flight, the next sent when one finishes.
  concurrency: positiveInt(),
  // Omitted: every trace request once.
  request_count: positiveInt().optional(),
  ...commonBenchmarkFields,
});

const requestRateSchema = section({
  mode: z.literal("request_rate"),
  // Requests per second, ignoring the trace's timestamps.
  request_rate: z.number().positive(),
  request_rate_mode: z.enum(["poisson", "constant"]).default("poisson"),
  // Optional cap on requests in flight.
  concurrency: positiveInt().optional(),
  request_count: positiveInt().optional(),
  ...commonBenchmarkFields,
});

export const BENCHMARK_MODES = ["fixed_schedule", "concurrency", "request_rate"] as const;

const benchmarkUnion = z.discriminatedUnion(
  "mode",
  [fixedScheduleSchema, concurrencySchema, requestRateSchema],
  {
    error: (issue) =>
      issue.code === "invalid_union" ? `must be one of: ${BENCHMARK_MODES.join(", ")}` : undefined,
  },
);

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// A trace replayed on its own timestamps is the point of the tool, so `mode` may be left out.
export const benchmarkSchema = z.preprocess((value) => {
  if (value === undefined) return { mode: "fixed_schedule" };
  if (isMapping(value) && !("mode" in value)) return { mode: "fixed_schedule", ...value };
  return value;
}, benchmarkUnion);

export type TraceConfig = z.output<typeof traceSchema>;
export type SynthesisConfig = NonNullable<TraceConfig["synthesis"]>;
export type BenchmarkConfig = z.output<typeof benchmarkSchema>;
export type BenchmarkMode = (typeof BENCHMARK_MODES)[number];
export type GoodputMetric = GoodputMetricTag;
