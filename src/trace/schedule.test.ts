import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rateSchedule, scheduleRows } from "./schedule.ts";

describe("fixed schedule", () => {
  const rows = [1000, 1500, 4000].map((timestamp) => ({
    timestamp,
    input_length: 1,
    output_length: 1,
    hash_ids: [0],
  }));
  it("starts at zero, at the first timestamp with auto offset, or at the start offset", () => {
    assert.deepEqual(
      scheduleRows(rows, {}).map((r) => r.atMs),
      [1000, 1500, 4000],
    );
    assert.deepEqual(
      scheduleRows(rows, { autoOffset: true }).map((r) => r.atMs),
      [0, 500, 3000],
    );
    assert.deepEqual(
      scheduleRows(rows, { startOffsetMs: 1500, endOffsetMs: 4000 }).map((r) => r.atMs),
      [0, 2500],
    );
    assert.throws(
      () => scheduleRows(rows, { autoOffset: true, startOffsetMs: 1 }),
      /cannot be used together/,
    );
  });
});

describe("request-rate schedule", () => {
  it("spaces constant arrivals evenly", () => {
    assert.deepEqual(rateSchedule(4, 2, "constant", 0), [0, 500, 1000, 1500]);
  });

  it("draws Poisson arrivals with the requested mean rate, reproducibly", () => {
    const times = rateSchedule(20_000, 50, "poisson", 7);
    const rate = (times.length - 1) / (times.at(-1)! / 1000);
    assert.ok(Math.abs(rate - 50) < 1.5, `${rate}`);
    assert.deepEqual(rateSchedule(50, 50, "poisson", 7), times.slice(0, 50));
    assert.throws(() => rateSchedule(1, 0, "constant", 0), /must be positive/);
  });
});
