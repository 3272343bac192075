import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { formatRecordLine } from "../metrics/exporters.ts";
import type { RequestRecord } from "../metrics/record.ts";
import { parseRecipe } from "../recipe/load.ts";
import { REPO_ROOT, withTempDir } from "../testing/fixtures.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { readArmArtifacts } from "./artifacts.ts";
import { writeReport } from "./report.ts";

const CHROMIUM = "/usr/bin/chromium";

/** Requests of an arm whose TTFT and ITL scale with `speed`. */
function records(speed: number): RequestRecord[] {
  return Array.from({ length: 120 }, (_, i) => {
    const start = 1e12 + i * 5e8;
    const ttft = (100 + (i % 17) * 13) * speed * 1e6;
    return {
      sessionNum: i,
      requestId: `r${i}`,
      conversationId: `r${i}`,
      turnIndex: 0,
      startNs: start,
      chunkNs: Array.from({ length: 6 }, (_, k) => start + ttft + k * (20 + (i % 5)) * speed * 1e6),
      inputTokens: 1000,
      outputTokens: 6,
      streaming: true,
    };
  });
}

describe("report.html in a browser", () => {
  // Skipped where Chromium is missing, and counted as a skip (.ci/run installs it).
  it("renders every chart interactively, with no console errors", {
    skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed`,
  }, async () => {
    await withTempDir(async (dir) => {
      const arms = [];
      for (const [name, speed] of [
        ["slow", 2],
        ["fast", 1],
      ] as const) {
        const armDir = join(dir, "arms", name);
        await mkdir(armDir, { recursive: true });
        await writeFile(
          join(armDir, "profile_export.jsonl"),
          `${records(speed)
            .map((r) => formatRecordLine(r))
            .join("\n")}\n`,
        );
        arms.push(await readArmArtifacts(armDir, name));
      }
      const recipe = parseRecipe(
        TINY_RECIPE.replace("hardware:", "benchmark: { goodput: { time_to_first_token: 300 } }\nhardware:"),
        "tiny.yaml",
      );
      const report = await writeReport(dir, arms, {
        title: "slow vs fast",
        recipe,
        command: "test",
        seed: 1,
      });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const problems: string[] = [];
        page.on("console", (m) => {
          if (m.type() === "error") problems.push(m.text());
        });
        page.on("pageerror", (e) => problems.push(e.message));
        await page.goto(pathToFileURL(report.html).href);
        // Page-side code as strings: the project compiles without the DOM library.
        await page.waitForFunction("document.querySelectorAll('.chart').length > 0");
        const charts = (await page.evaluate(`[...document.querySelectorAll(".chart")].map((el) => ({
          id: el.id,
          interactive: echarts.getInstanceByDom(el) !== undefined,
          paths: el.querySelectorAll("svg path").length,
        }))`)) as { id: string; interactive: boolean; paths: number }[];
        assert.ok(charts.length >= 4, JSON.stringify(charts));
        for (const c of charts) {
          assert.ok(c.interactive, `${c.id} was not initialised`);
          assert.ok(c.paths > 5, `${c.id} drew nothing`);
        }
        assert.deepEqual(problems, []);
        await mkdir(join(REPO_ROOT, "test-artifacts"), { recursive: true });
        await page.screenshot({ path: join(REPO_ROOT, "test-artifacts", "report.png"), fullPage: true });
      } finally {
        await browser.close();
      }
    });
  });
});
