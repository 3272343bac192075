import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertServelabError } from "../testing/assert-errors.ts";
import { parseLoads, parseSeedCount, planExperiment } from "./plan.ts";

describe("experiment plans", () => {
  it("parses load factors into increasing order and refuses bad ones", () => {
    assert.deepEqual(parseLoads("1.5, 0.5,1"), [0.5, 1, 1.5]);
    for (const bad of ["", "0", "-1", "x", "1,1", "1e9", "1,,2"])
      assertServelabError(() => parseLoads(bad), "USAGE");
    assert.equal(parseSeedCount("3"), 3);
    for (const bad of ["0", "1.5", "101", "x"]) assertServelabError(() => parseSeedCount(bad), "USAGE");
  });

  it("keeps a single run's layout, and puts a sweep's other points beside it", () => {
    const single = planExperiment("r", ["a", "b"], [1], null);
    assert.deepEqual(
      single.runs.map((r) => [r.dir, r.label]),
      [
        ["arms/a", "a"],
        ["arms/b", "b"],
      ],
    );
    const sweep = planExperiment("r", ["a", "b"], [0.5, 1, 2], [1, 2]);
    assert.equal(sweep.runs.length, 12);
    assert.deepEqual(sweep.main, { load: 1, traceSeed: 1 });
    assert.deepEqual(
      sweep.runs.filter((r) => r.dir.startsWith("arms/")).map((r) => r.point),
      [
        { load: 1, traceSeed: 1 },
        { load: 1, traceSeed: 1 },
      ],
    );
    assert.ok(sweep.runs.some((r) => r.dir === "points/load-2/seed-2/b" && r.label === "b ×2 seed 2"));
    assert.equal(new Set(sweep.runs.map((r) => r.dir)).size, 12);
    // Without load 1 the lowest load is the main point.
    assert.deepEqual(planExperiment("r", ["a"], [2, 4], null).main, { load: 2, traceSeed: undefined });
  });
});
