import { existsSync } from "node:fs";

/**
 * The `skip` option of a test that reads upstream data from the data directory: skipped, saying why, when the
 * data is absent on a developer's machine; never skipped where `SERVELAB_REQUIRE_DATA=1` (CI sets it), so that a
 * missing data directory fails the run there instead of passing it with less tested.
 */
export function skipWithoutData(path: string): false | string {
  if (process.env.SERVELAB_REQUIRE_DATA === "1" || existsSync(path)) return false;
  return `${path} is not present (set SERVELAB_DATA_DIR)`;
}

/**
 * The `skip` option of a test that runs an installed tool (Debian's `prometheus`, which `.ci/run` installs):
 * skipped on a developer's machine without it, never where `SERVELAB_REQUIRE_DATA=1` (CI), where it must be there.
 */
export function skipWithoutTool(path: string): false | string {
  if (process.env.SERVELAB_REQUIRE_DATA === "1" || existsSync(path)) return false;
  return `${path} is not installed`;
}
