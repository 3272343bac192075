import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { calibrationReport, DOC_PATH } from "../../../scripts/calibration.ts";

describe("docs/calibration.md", () => {
  it("is what scripts/calibration.ts generates from the current model", async () => {
    assert.equal(await readFile(DOC_PATH, "utf8"), calibrationReport());
  });
});
