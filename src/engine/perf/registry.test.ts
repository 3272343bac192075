import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertServelabError } from "../../testing/assert-errors.ts";
import { getStepTimeModel, stepTimeModelNames } from "./registry.ts";
import type { TableStepTimeModel } from "./table.ts";

const NAMES = [
  "polynomial",
  "deepseek-v3.2-nvfp4/gb200/dep8/prefill",
  "deepseek-v3.2-nvfp4/gb200/dep8/aggregated",
  "deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep",
];

describe("step-time model registry", () => {
  it("lists the polynomial model and the three DEP8 deployments", () => {
    assert.deepEqual(stepTimeModelNames(), NAMES);
  });

  it("returns a model carrying the name it was asked for", () => {
    for (const name of NAMES) assert.equal(getStepTimeModel(name).name, name);
  });

  it("configures each deployment as the recipe does", () => {
    const backend = (name: string) => (getStepTimeModel(name) as TableStepTimeModel).variant.moeBackend;
    assert.equal(backend("deepseek-v3.2-nvfp4/gb200/dep8/prefill"), "TRTLLM");
    assert.equal(backend("deepseek-v3.2-nvfp4/gb200/dep8/aggregated"), "TRTLLM");
    assert.equal(backend("deepseek-v3.2-nvfp4/gb200/dep8/decode-wideep"), "WIDEEP");
  });

  it("rejects an unknown name with the known ones", () => {
    assertServelabError(() => getStepTimeModel("table"), "USAGE", "table", ...NAMES);
  });
});
