import { BlockIds } from "../engine/block-ids.ts";
import { engineSettingsFor } from "../engine/engine-settings.ts";
import type { EngineRequest, WorkerRole } from "../engine/engine-worker.ts";
import { EngineWorker } from "../engine/engine-worker.ts";
import { kvCapacityBlocks } from "../engine/kv-capacity.ts";
import type { PerfModelFor } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import type { BlockHasher } from "../kv/block-hash.ts";
import type { KvIndex } from "../kv/kv-index.ts";
import { traceLocalHashes } from "../kv/trace-blocks.ts";
import type { RequestError, RequestRecord } from "../metrics/record.ts";
import type { Recipe } from "../recipe/schema.ts";
import { armRouterOptions } from "../router/arm-router.ts";
import { createRouter } from "../router/create-router.ts";
import { DisaggRouter } from "../router/disagg-router.ts";
import { KvRouter } from "../router/kv-router.ts";
import { decisionLabel, type Router, type RouterPolicy } from "../router/router.ts";
import { scheduleRows } from "../trace/schedule.ts";
import type { TraceRow } from "../trace/types.ts";
import { EventQueue } from "./event-queue.ts";
import { type Link, LinkNetwork, link } from "./link-network.ts";

/** A trace with its router block hashes and block ids computed once, to be shared by the arms that replay it. */
export interface PreparedTrace {
  rows: readonly TraceRow[];
  kvBlockSize: number;
  seqs: Uint32Array[];
  locals: Uint32Array[];
  blockIds: number[][];
  ids: BlockIds;
}

export function prepareTrace(
  rows: readonly TraceRow[],
  hasher: BlockHasher,
  kvBlockSize: number,
  traceBlockSize: number,
): PreparedTrace {
  let blocks = 0;
  for (const row of rows) blocks += Math.floor(row.input_length / kvBlockSize);
  const ids = new BlockIds(blocks);
  const seqs: Uint32Array[] = [];
  const locals: Uint32Array[] = [];
  const blockIds: number[][] = [];
  for (const row of rows) {
    const l = traceLocalHashes(hasher, row.hash_ids, row.input_length, kvBlockSize, traceBlockSize);
    const s = hasher.sequenceHashes(l);
    locals.push(l);
    seqs.push(s);
    blockIds.push(ids.intern(s, l));
  }
  return { rows, kvBlockSize, seqs, locals, blockIds, ids };
}

export interface SimOptions {
  recipe: Recipe;
  arm: string;
  trace: PreparedTrace;
  hasher: BlockHasher;
  /** Step-time model for a worker group. */
  perfModel: PerfModelFor;
  seed?: number;
  /** Fixed-schedule window (AIPerf semantics): zero at the first timestamp, or at `startOffsetMs`. */
  autoOffset?: boolean;
  startOffsetMs?: number;
  endOffsetMs?: number;
  onRecord?: (rec: RequestRecord) => void;
  onProgress?: (virtualMs: number, done: number, total: number) => void;
  /** Interval of the queue / KV-usage timeline, in virtual ms. */
  sampleEveryMs?: number;
  /**
   * Runs of decode-only steps (see `EngineWorker.planRun`) are scheduled as one event, cut short when a request
   * arrives. Default true; false schedules every step (the results are the same, barring events at the very same
   * virtual time, which may then run in another order).
   */
  stepRuns?: boolean;
}

/** Longest run of decode steps scheduled as one event. */
const MAX_RUN_STEPS = 256;

export interface TimelineSample {
  t_s: number;
  waiting: number;
  running: number;
  kv_usage: number;
}

export interface TargetStats {
  target: string;
  role: WorkerRole;
  requests: number;
  prompt_tokens: number;
  cached_tokens: number;
  hit_rate: number;
}

export interface SimResult {
  requests: number;
  virtualMs: number;
  preemptions: number;
  kvTransferMs: number[];
  kvTransferBytes: number;
  targets: TargetStats[];
  timeline: TimelineSample[];
  routerIndexErrors: { parentNotFound: number; blockNotFound: number };
  /** Events the simulation ran (arrivals, step ends, transfers, samples). */
  events: number;
}

/** A request in flight: what the engines see, plus the simulator's own record of it. */
interface Flight extends EngineRequest {
  index: number;
  row: TraceRow;
  startMs: number;
  /** When each output token reached the client, in ns (the record's unit). */
  tokenNs: Float64Array;
  cachedTokens: number;
  target: string;
  prefillTarget?: string;
  /** Disaggregated arms: the decode worker chosen at routing time, and the rank if the router pinned one. */
  decodeTarget?: { workerId: string; dpRank: number | null };
}

interface WorkerSlot {
  worker: EngineWorker<Flight>;
  role: WorkerRole;
  /** Per rank, its GPU's interconnect port out and in (KV hand-over from prefill to decode ranks). */
  linksOut: Link[];
  linksIn: Link[];
  /** Applies a finished step and starts the next (made once per worker: steps are the hottest event). */
  onStepEnd?: () => void;
  /** The run of steps in flight: their durations, their end times, how many, and its event's generation. */
  runMs: Float64Array;
  runEnds: Float64Array;
  runSteps: number;
  runGen: number;
}

/**
 * Replays a trace against one arm of a recipe on a simulated cluster, on a virtual clock: the frontend's router
 * (the routing library itself, its KV index fed by the simulated engines' events), DEP workers stepping in lockstep
 * under a step-time model, and, for disaggregated arms, KV hand-over from prefill to decode ranks over shared
 * links. Emits one AIPerf-style record per request as it completes.
 */
export function simulateArm(opts: SimOptions): SimResult {
  const { recipe, hasher } = opts;
  const arm = recipe.arms[opts.arm];
  if (!arm) {
    throw new ServelabError(
      "USAGE",
      `recipe ${recipe.name} has no arm "${opts.arm}"; arms: ${Object.keys(recipe.arms).join(", ")}`,
    );
  }
  const seed = opts.seed ?? recipe.trace.seed;
  const queue = new EventQueue();
  const { ids } = opts.trace;
  const groups = arm.workers
    ? [{ role: "aggregated" as const, group: arm.workers }]
    : [
        { role: "prefill" as const, group: arm.prefill! },
        { role: "decode" as const, group: arm.decode! },
      ];
  const kvBlock = groups[0]!.group.kv_block_size;
  if (opts.trace.kvBlockSize !== kvBlock) {
    throw new ServelabError(
      "USAGE",
      `the trace was prepared for ${opts.trace.kvBlockSize}-token KV blocks, arm ${opts.arm} uses ${kvBlock}`,
    );
  }
  // The index mirrors what the publishing ranks cache, so their KV capacity bounds it: size it for that up front.
  const indexed = groups
    .filter(({ role, group }) => role !== "decode" && group.publish_events_and_metrics)
    .reduce((sum, { group }) => {
      const e = group.engine;
      const ranks = group.replicas * (e.enable_attention_dp ? e.tensor_parallel_size : 1);
      return sum + ranks * kvCapacityBlocks(recipe, group);
    }, 0);
  const ropts = {
    ...armRouterOptions(arm, kvBlock, seed, hasher, { seqAddressedEvents: true }),
    expectedIndexEntries: Math.max(indexed, 4096),
    // Every block an engine stores is a prompt block of the trace: the index keeps its node at the block's id.
    blockDirectory: ids,
  };
  const policy = arm.router.mode as RouterPolicy;
  const disagg = arm.workers ? undefined : new DisaggRouter(policy, ropts);
  const router: Router | undefined = arm.workers ? createRouter(policy, ropts) : undefined;
  const workers = new Map<string, WorkerSlot>();
  // Under attention DP one request's KV lives on one rank, so a hand-over crosses that rank's GPU port (per GPU
  // per direction), shared with the other hand-overs leaving or entering the same GPU.
  const nvlinkGBs = recipe.hardware.nvlink.bandwidth_gb_per_s;
  const network = new LinkNetwork(queue);

  for (const { role, group } of groups) {
    const e = group.engine;
    const dp = e.enable_attention_dp ? e.tensor_parallel_size : 1;
    const model = opts.perfModel(group, role);
    for (let i = 0; i < group.replicas; i++) {
      const workerId = `${role === "aggregated" ? "agg" : role}-${i}`;
      const kvRouter = role === "decode" ? disagg?.decode : role === "prefill" ? disagg?.prefill : router;
      const index = kvRouter instanceof KvRouter ? kvRouter.index : undefined;
      const worker = new EngineWorker<Flight>(
        workerId,
        dp,
        role,
        engineSettingsFor(recipe, group),
        model,
        (rank) => {
          // The worker joins the router after its engine is built: look its target up at the first event.
          let t = -1;
          const target = (index: KvIndex) => {
            if (t < 0) t = index.targets.find({ workerId, dpRank: rank });
            return t;
          };
          return {
            stored: (blocks) => {
              if (!index || !group.publish_events_and_metrics) return;
              const t = target(index);
              // A batch is mostly one chain: each block's parent is the block before it, whose node is at hand.
              let prevId = -1;
              let prevNode = -1;
              for (const id of blocks) {
                const p = ids.parentOf(id);
                const parent =
                  p < 0 ? -1 : p === prevId ? prevNode : index.heldNode(t, ids.seqLoOf(p), ids.seqHiOf(p));
                if (p >= 0 && parent < 0) {
                  index.errors.parentNotFound++;
                  prevId = -1;
                  continue;
                }
                prevNode = index.storeBlockUnder(
                  t,
                  parent,
                  ids.seqLoOf(id),
                  ids.seqHiOf(id),
                  ids.localLoOf(id),
                  ids.localHiOf(id),
                  id,
                );
                prevId = id;
              }
            },
            removed: (blocks) => {
              if (!index || !group.publish_events_and_metrics) return;
              const t = target(index);
              for (const id of blocks) index.removeBlockAt(t, id, ids.seqLoOf(id), ids.seqHiOf(id));
            },
          };
        },
      );
      const ports = (dir: string) =>
        role === "aggregated"
          ? []
          : Array.from({ length: dp }, (_, r) => link(`${workerId}/${r}/${dir}`, nvlinkGBs));
      const slot: WorkerSlot = {
        worker,
        role,
        linksOut: ports("out"),
        linksIn: ports("in"),
        runMs: new Float64Array(MAX_RUN_STEPS),
        runEnds: new Float64Array(MAX_RUN_STEPS),
        runSteps: 1,
        runGen: 0,
      };
      workers.set(workerId, slot);
      if (role === "aggregated") router!.addWorker(workerId, dp);
      else if (role === "prefill") disagg!.addPrefillWorker(workerId, dp);
      else disagg!.addDecodeWorker(workerId, dp);
    }
  }

  const scheduled = scheduleRows(opts.trace.rows, {
    ...(opts.autoOffset === undefined ? {} : { autoOffset: opts.autoOffset }),
    ...(opts.startOffsetMs === undefined ? {} : { startOffsetMs: opts.startOffsetMs }),
    ...(opts.endOffsetMs === undefined ? {} : { endOffsetMs: opts.endOffsetMs }),
  });
  const total = scheduled.length;
  // A recipe whose KV cannot hold even the trace's smallest request would only measure rejections.
  let smallest: { isl: number; osl: number } | undefined;
  for (const { row } of scheduled) {
    const need = { isl: row.input_length, osl: Math.max(1, row.output_length) };
    if (!smallest || need.isl + need.osl < smallest.isl + smallest.osl) smallest = need;
  }
  if (smallest) {
    for (const slot of workers.values()) {
      if (slot.worker.canFit(smallest)) continue;
      throw new ServelabError(
        "RECIPE_INVALID",
        `arm ${opts.arm}: a ${slot.worker.id} rank's KV cache (${slot.worker.settings.kvCapacityBlocks} blocks of ${slot.worker.settings.blockSize} tokens) cannot hold even the trace's smallest request (${smallest.isl} + ${smallest.osl} tokens)`,
      );
    }
  }
  const targetStats = new Map<string, TargetStats>();
  const kvTransferMs: number[] = [];
  const timeline: TimelineSample[] = [];
  let done = 0;

  const statsFor = (label: string, role: WorkerRole) => {
    let s = targetStats.get(label);
    if (!s) {
      s = { target: label, role, requests: 0, prompt_tokens: 0, cached_tokens: 0, hit_rate: 0 };
      targetStats.set(label, s);
    }
    return s;
  };

  const finish = (f: Flight, error?: RequestError) => {
    done++;
    opts.onRecord?.({
      ...(error ? { error } : {}),
      sessionNum: f.index,
      requestId: f.id,
      conversationId: f.row.session_id ?? f.id,
      turnIndex: 0,
      startNs: f.startMs * 1e6,
      chunkNs: error ? [] : f.tokenNs,
      inputTokens: f.row.input_length,
      outputTokens: f.osl,
      cachedTokens: f.cachedTokens,
      target: f.target,
      streaming: true,
    });
    opts.onProgress?.(queue.now, done, total);
  };

  /** A request whose context can never fit a rank's KV fails at once, as a server would answer 400. */
  const reject = (f: Flight, slot: WorkerSlot) => {
    if (router) router.free(f.id, queue.now);
    else disagg!.free(f.id, queue.now);
    finish(f, {
      code: 400,
      type: "ContextLengthExceeded",
      message: `${f.isl} prompt + ${f.osl} output tokens exceed the KV capacity of a ${slot.worker.id} rank`,
    });
  };

  const stepRuns = opts.stepRuns ?? true;
  /** Schedules the end of a run's step `last` (a run's event is superseded when the run is cut short). */
  const scheduleRunEnd = (slot: WorkerSlot, last: number) => {
    slot.runSteps = last + 1;
    const gen = ++slot.runGen;
    queue.at(slot.runEnds[last]!, () => {
      if (slot.runGen === gen) slot.onStepEnd!();
    });
  };
  const kick = (slot: WorkerSlot) => {
    const w = slot.worker;
    if (w.isStepping || !w.hasWork()) return;
    const ms = w.beginStep();
    if (ms === null) return;
    const steps = stepRuns ? w.planRun(MAX_RUN_STEPS, slot.runMs) : 1;
    if (steps === 1) {
      queue.after(ms, slot.onStepEnd!);
      return;
    }
    // Step ends as one event after another would put them: each at the previous end plus its duration.
    let t = queue.now;
    for (let j = 0; j < steps; j++) {
      t += slot.runMs[j]!;
      slot.runEnds[j] = t;
    }
    scheduleRunEnd(slot, steps - 1);
  };
  /**
   * Queues a request on a worker, pinned to a rank or (null) for the engine to place: a run in flight ends with
   * the step in flight, whose end admits it.
   */
  const handTo = (slot: WorkerSlot, rank: number | null, f: Flight, reserved = false) => {
    slot.worker.enqueue(rank, f, reserved);
    if (slot.runSteps > 1) {
      let m = 0;
      while (slot.runEnds[m]! < queue.now) m++;
      if (m < slot.runSteps - 1) scheduleRunEnd(slot, m);
    }
    kick(slot);
  };

  const sink = (slot: WorkerSlot) => ({
    token: (f: Flight, rank: number, index: number, atMs?: number) => {
      f.tokenNs[index - 1] = (atMs ?? queue.now) * 1e6;
      if (index !== 1 || !router) return;
      router.markPrefillCompleted(f.id, queue.now);
      // The rank is the engine's choice unless the router pinned it: known once the prompt ran.
      f.target = `${slot.worker.id}/${rank}`;
      const s = statsFor(f.target, "aggregated");
      s.requests++;
      s.prompt_tokens += f.isl;
    },
    prefillDone: (f: Flight, rank: number, cachedTokens: number) => {
      f.cachedTokens = cachedTokens;
      f.prefillTarget = `${slot.worker.id}/${rank}`;
      const s = statsFor(f.prefillTarget, "prefill");
      s.requests++;
      s.prompt_tokens += f.isl;
      s.cached_tokens += cachedTokens;
      const decodeTarget = f.decodeTarget!;
      const d = workers.get(decodeTarget.workerId)!;
      // A pinned decode rank was the router's; otherwise the decode engine places the request as it arrives.
      const pinned = decodeTarget.dpRank !== null;
      const decodeRank = decodeTarget.dpRank ?? d.worker.reserve(f);
      f.target = `${d.worker.id}/${decodeRank}`;
      statsFor(f.target, "decode").requests++;
      const started = queue.now;
      const bytes = f.isl * recipe.model.kv_cache_bytes_per_token;
      network.send(bytes, [slot.linksOut[rank]!, d.linksIn[decodeRank]!], () => {
        kvTransferMs.push(queue.now - started);
        disagg!.prefillFinished(f.id, queue.now);
        f.tokenNs[0] = queue.now * 1e6;
        if (f.osl <= 1) {
          if (!pinned) d.worker.unreserve(decodeRank, f);
          disagg!.free(f.id, queue.now);
          finish(f);
          return;
        }
        handTo(d, decodeRank, f, !pinned);
      });
    },
    finished: (f: Flight, _rank: number) => {
      if (slot.role === "prefill") return;
      if (router) router.free(f.id, queue.now);
      else disagg!.free(f.id, queue.now);
      finish(f);
    },
  });

  queue.stream(
    scheduled.map((s) => s.atMs),
    (index) => {
      const { row, position } = scheduled[index]!;
      const seqs = opts.trace.seqs[position]!;
      const locals = opts.trace.locals[position]!;
      const osl = Math.max(1, row.output_length);
      const f: Flight = {
        id: `r${index}`,
        isl: row.input_length,
        osl,
        blockIds: opts.trace.blockIds[position]!,
        index,
        row,
        startMs: queue.now,
        tokenNs: new Float64Array(osl),
        cachedTokens: 0,
        target: "",
      };
      const req = { requestId: f.id, isl: f.isl, seqs, locals };
      if (router) {
        const d = router.route(req, queue.now);
        f.target = decisionLabel(d);
        const slot = workers.get(d.workerId)!;
        if (!slot.worker.canFit(f)) {
          reject(f, slot);
          return;
        }
        handTo(slot, d.dpRank, f);
        return;
      }
      const d = disagg!.route(req, queue.now);
      if (!d.prefill) throw new ServelabError("USAGE", `arm ${opts.arm}: no routable prefill worker`);
      f.target = decisionLabel(d.decode);
      f.decodeTarget = { workerId: d.decode.workerId, dpRank: d.decode.dpRank };
      const slot = workers.get(d.prefill.workerId)!;
      const decodeSlot = workers.get(d.decode.workerId)!;
      if (!slot.worker.canFit(f) || !decodeSlot.worker.canFit(f)) {
        reject(f, slot.worker.canFit(f) ? decodeSlot : slot);
        return;
      }
      handTo(slot, d.prefill.dpRank, f);
    },
  );

  const every = opts.sampleEveryMs ?? 10_000;
  const sample = () => {
    let waiting = 0;
    let running = 0;
    let kv = 0;
    let ranks = 0;
    for (const { worker } of workers.values()) {
      waiting += worker.queued;
      for (let r = 0; r < worker.ranks.length; r++) {
        const l = worker.load(r);
        waiting += l.waiting;
        running += l.running;
        kv += l.kvUsage;
        ranks++;
      }
    }
    timeline.push({ t_s: queue.now / 1000, waiting, running, kv_usage: ranks === 0 ? 0 : kv / ranks });
    // Keep sampling while anything else is scheduled: when only the sampler is left, the run is over.
    if (done < total && queue.size > 0) queue.after(every, sample);
  };
  for (const slot of workers.values()) {
    const stepSink = sink(slot);
    slot.onStepEnd = () => {
      if (slot.runSteps === 1) slot.worker.endStep(stepSink);
      else slot.worker.endRun(slot.runSteps, stepSink, slot.runEnds);
      // Nothing is in flight until `kick` plans again (an idle worker must not look mid-run to `handTo`).
      slot.runSteps = 1;
      kick(slot);
    };
  }
  queue.at(0, sample);
  queue.run();
  if (done < total) {
    throw new Error(
      `simulation of arm ${opts.arm} stalled with ${total - done} of ${total} requests unfinished`,
    );
  }

  // Aggregated arms learn cache hits from the engines themselves.
  for (const [workerId, slot] of workers) {
    if (slot.role !== "aggregated") continue;
    slot.worker.ranks.forEach((_, r) => {
      const c = slot.worker.cacheStats(r);
      const s = statsFor(`${workerId}/${r}`, "aggregated");
      s.cached_tokens = c.hitTokens;
    });
  }
  for (const s of targetStats.values())
    s.hit_rate = s.prompt_tokens === 0 ? 0 : s.cached_tokens / s.prompt_tokens;
  const indexErrors = { parentNotFound: 0, blockNotFound: 0 };
  for (const r of [router, disagg?.prefill, disagg?.decode]) {
    if (r instanceof KvRouter) {
      indexErrors.parentNotFound += r.index.errors.parentNotFound;
      indexErrors.blockNotFound += r.index.errors.blockNotFound;
    }
  }
  let preemptions = 0;
  for (const slot of workers.values()) preemptions += slot.worker.preemptions;
  return {
    requests: done,
    virtualMs: queue.now,
    preemptions,
    kvTransferMs,
    kvTransferBytes: network.bytes,
    targets: [...targetStats.values()].sort((a, b) => a.target.localeCompare(b.target)),
    timeline,
    routerIndexErrors: indexErrors,
    events: queue.ran,
  };
}
