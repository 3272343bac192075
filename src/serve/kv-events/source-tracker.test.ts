import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newTrackerCounters, type RawBatch, SourceTracker } from "./source-tracker.ts";

const empty = new Uint8Array(0);
/** A batch whose payload stands for one publisher process (`pid`) numbering it `seq`. */
const b = (seq: number, pid = 1): RawBatch => ({
  seq: BigInt(seq),
  topic: empty,
  seqFrame: empty,
  payload: new Uint8Array([pid, seq]),
});

function harness(replay = true, cooldownMs = 1000) {
  const log: string[] = [];
  const counters = newTrackerCounters();
  const t = new SourceTracker(
    {
      apply: (x) => log.push(`apply ${x.seq}`),
      clear: () => log.push("clear"),
      requestReplay: (from) => log.push(`replay ${from}`),
      cancelReplay: () => log.push("cancel"),
    },
    counters,
    { replay, cooldownMs },
  );
  const take = () => log.splice(0);
  return { t, counters, take };
}

describe("KV-event source sequence tracking", () => {
  it("applies a contiguous stream from 0", () => {
    const { t, take, counters } = harness();
    for (const s of [0, 1, 2]) t.live(b(s), 0);
    assert.deepEqual(take(), ["apply 0", "apply 1", "apply 2"]);
    assert.equal(counters.gaps, 0);
  });

  it("fills a gap by replay, buffering live batches and dropping what the replay already applied", () => {
    const { t, take, counters } = harness();
    t.live(b(0), 0);
    t.live(b(3), 0);
    assert.deepEqual(take(), ["apply 0", "replay 1"]);
    t.live(b(4), 0);
    assert.deepEqual(take(), [], "live batches wait for the replay");
    for (const s of [1, 2, 3, 4]) t.replayBatch(b(s));
    t.replayEnd(0);
    t.live(b(5), 0);
    assert.deepEqual(take(), ["apply 1", "apply 2", "apply 3", "apply 4", "apply 5"]);
    assert.equal(counters.gaps, 1);
    assert.equal(counters.duplicates, 2);
    assert.equal(counters.replaysCompleted, 1);
  });

  it("asks for a replay from 0 when the first batch it hears is later (a late joiner)", () => {
    const { t, take } = harness();
    t.live(b(2), 0);
    assert.deepEqual(take(), ["replay 0"]);
    for (const s of [0, 1, 2]) t.replayBatch(b(s));
    t.replayEnd(0);
    assert.deepEqual(take(), ["apply 0", "apply 1", "apply 2"]);
  });

  it("clears the source when the replay starts later than asked (the range left the buffer)", () => {
    const { t, take, counters } = harness();
    t.live(b(0), 0);
    t.live(b(5), 0);
    take();
    t.replayBatch(b(3));
    t.replayBatch(b(4));
    t.replayBatch(b(5));
    t.replayEnd(0);
    assert.deepEqual(take(), ["clear", "apply 3", "apply 4", "apply 5"]);
    assert.equal(counters.replaysTruncated, 1);
  });

  it("on a timed-out replay clears, resumes from the live batches and cools down", () => {
    const { t, take, counters } = harness(true, 1000);
    t.live(b(0), 0);
    t.live(b(2), 0);
    t.live(b(3), 0);
    take();
    t.replayFailed(10);
    assert.deepEqual(take(), ["cancel", "clear", "apply 2", "apply 3"]);
    // Within the cooldown a gap cannot replay: the source starts over from the batch at hand.
    t.live(b(5), 500);
    assert.deepEqual(take(), ["clear", "apply 5"]);
    t.live(b(7), 1100);
    assert.deepEqual(take(), ["replay 6"]);
    assert.equal(counters.replaysFailed, 1);
  });

  it("without a replay endpoint, clears on a gap and carries on", () => {
    const { t, take } = harness(false);
    t.connected(0);
    t.live(b(0), 0);
    t.live(b(2), 0);
    assert.deepEqual(take(), ["apply 0", "clear", "apply 2"]);
  });

  it("treats a sequence that goes back as a publisher restart: clear, then rebuild from 0", () => {
    const { t, take, counters } = harness();
    for (const s of [0, 1, 2, 3]) t.live(b(s), 0);
    take();
    t.live(b(1, 2), 0);
    assert.deepEqual(take(), ["clear", "replay 0"]);
    t.replayBatch(b(0, 2));
    t.replayBatch(b(1, 2));
    t.replayEnd(0);
    assert.deepEqual(take(), ["apply 0", "apply 1"]);
    assert.equal(counters.resets, 1);
  });

  it("replays from 0 on first connect, buffering live batches meanwhile", () => {
    const { t, take } = harness();
    t.connected(0);
    assert.deepEqual(take(), ["replay 0"]);
    t.live(b(7), 0);
    for (const s of [0, 1, 2, 3, 4, 5, 6, 7]) t.replayBatch(b(s));
    t.replayEnd(0);
    t.live(b(8), 0);
    assert.deepEqual(
      take(),
      [0, 1, 2, 3, 4, 5, 6, 7, 8].map((s) => `apply ${s}`),
    );
  });

  it("on reconnect checks its last batch is still the publisher's, else rebuilds from 0", () => {
    const same = harness();
    for (const s of [0, 1, 2]) same.t.live(b(s), 0);
    same.take();
    same.t.connected(0);
    assert.deepEqual(same.take(), ["replay 2"]);
    same.t.replayBatch(b(2));
    same.t.replayBatch(b(3));
    same.t.replayEnd(0);
    assert.deepEqual(same.take(), ["apply 3"]);
    assert.equal(same.counters.resets, 0);

    // A new process that has already published past our last seq: the numbers line up, the bytes do not.
    const other = harness();
    for (const s of [0, 1, 2]) other.t.live(b(s), 0);
    other.take();
    other.t.connected(0);
    other.take();
    other.t.replayBatch(b(2, 9));
    assert.deepEqual(other.take(), ["cancel", "clear", "replay 0"]);
    for (const s of [0, 1, 2, 3]) other.t.replayBatch(b(s, 9));
    other.t.replayEnd(0);
    assert.deepEqual(other.take(), ["apply 0", "apply 1", "apply 2", "apply 3"]);
    assert.equal(other.counters.resets, 1);

    // A new process that has published less: nothing from our last seq on.
    const fewer = harness();
    for (const s of [0, 1, 2]) fewer.t.live(b(s), 0);
    fewer.take();
    fewer.t.connected(0);
    fewer.take();
    fewer.t.replayEnd(0);
    assert.deepEqual(fewer.take(), ["clear", "replay 0"]);
  });

  it("asks again for batches lost on the live socket after the replay was served", () => {
    const { t, take } = harness();
    t.live(b(0), 0);
    t.live(b(2), 0);
    t.live(b(5), 0);
    take();
    t.replayBatch(b(1));
    t.replayBatch(b(2));
    t.replayEnd(0);
    assert.deepEqual(take(), ["apply 1", "apply 2", "replay 3"]);
    t.replayBatch(b(3));
    t.replayBatch(b(4));
    t.replayBatch(b(5));
    t.replayEnd(0);
    assert.deepEqual(take(), ["apply 3", "apply 4", "apply 5"]);
  });
});
