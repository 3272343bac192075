import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import type { RequestRecord } from "../metrics/record.ts";
import { parseRecipe } from "../recipe/load.ts";
import { writeArmDir } from "../testing/arm-dir.ts";
import { REPO_ROOT, withTempDir } from "../testing/fixtures.ts";
import { TINY_RECIPE } from "../testing/recipes.ts";
import { readArmArtifacts } from "./artifacts.ts";
import type { CapacityRun } from "./capacity.ts";
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

const BROWSER_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function writeArm(dir: string, name: string, speed: number) {
  return readArmArtifacts(await writeArmDir(join(dir, "arms", name), records(speed)), name);
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const overlaps = (a: Box, b: Box) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** ECharts' own layout boxes of every chart on the page: plot areas (grids), legends and titles. */
const LAYOUT_SCRIPT = `[...document.querySelectorAll(".chart")].map((el) => {
  const inst = echarts.getInstanceByDom(el);
  const model = inst.getModel();
  const box = (view) => {
    const g = view.group;
    const r = g.getBoundingRect().clone();
    const m = g.getComputedTransform();
    if (m) r.applyTransform(m);
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  };
  const grids = [];
  model.eachComponent("grid", (g) => {
    const r = g.coordinateSystem.getRect();
    grids.push({ x: r.x, y: r.y, width: r.width, height: r.height });
  });
  const legends = [];
  model.eachComponent("legend", (c) => legends.push(box(inst.getViewOfComponentModel(c))));
  const titles = [];
  model.eachComponent("title", (c) => titles.push(box(inst.getViewOfComponentModel(c))));
  return { id: el.id, width: inst.getWidth(), height: inst.getHeight(), grids, legends, titles };
})`;

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
        arms.push(await writeArm(dir, name, speed));
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
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
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

  it("keeps five arms' charts legible: legends and titles clear of every plot area, nothing clipped", {
    skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed`,
  }, async () => {
    await withTempDir(async (dir) => {
      // Long names, as attribution arms have them.
      const names = [
        "agg-round-robin",
        "agg-round-robin+kv-events",
        "agg-kv-router-with-events",
        "disagg-round-robin-prefill-decode",
        "disagg-kv-router-prefill-decode",
      ];
      const arms = [];
      for (const [i, name] of names.entries()) arms.push(await writeArm(dir, name, 2 - i * 0.3));
      const recipe = parseRecipe(
        TINY_RECIPE.replace("hardware:", "benchmark: { goodput: { time_to_first_token: 300 } }\nhardware:"),
        "tiny.yaml",
      );
      const runs: CapacityRun[] = names.flatMap((arm, i) =>
        [0.5, 1, 1.5].map((load) => ({
          arm,
          load,
          traceSeed: undefined,
          offeredRate: 2 * load,
          gpus: 8,
          goodput: 2 * load * Math.max(0, 1 - load * (0.5 - i * 0.08)),
          attainment: { estimate: Math.max(0, 1 - load * (0.5 - i * 0.08)), lo: 0, hi: 1 },
          ttftP50: 100 * load * (2 - i * 0.3),
          ttftP99: 400 * load * (2 - i * 0.3),
          itlP50: 10 + i,
          itlP99: 30 + i,
          outputTokensPerS: 300 * load,
          tokensPerSPerUser: 100 / load,
          overloaded: load > 1 && i === 0,
        })),
      );
      const report = await writeReport(dir, arms, {
        title: "five arms",
        recipe,
        command: "test",
        seed: 1,
        capacity: { runs, loads: [0.5, 1, 1.5], seeds: null },
      });
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        const problems: string[] = [];
        page.on("pageerror", (e) => problems.push(e.message));
        await page.goto(pathToFileURL(report.html).href);
        await page.waitForFunction("document.querySelectorAll('.chart').length > 0");
        const layouts = (await page.evaluate(LAYOUT_SCRIPT)) as {
          id: string;
          width: number;
          height: number;
          grids: Box[];
          legends: Box[];
          titles: Box[];
        }[];
        assert.ok(layouts.length >= 7, JSON.stringify(layouts.map((l) => l.id)));
        const shots = join(REPO_ROOT, "test-artifacts", "five-arms");
        await mkdir(shots, { recursive: true });
        for (const l of layouts) {
          await page.locator(`#${l.id}`).screenshot({ path: join(shots, `${l.id}.png`) });
          // Axis labels and names sit below each plot area: keep the legend clear of them too.
          const withAxes = l.grids.map((g) => ({ ...g, height: g.height + 30 }));
          for (const legend of l.legends) {
            assert.ok(legend.width > 0, `${l.id}: legend not drawn`);
            for (const g of withAxes)
              assert.ok(
                !overlaps(legend, g),
                `${l.id}: legend ${JSON.stringify(legend)} overlaps ${JSON.stringify(g)}`,
              );
            assert.ok(legend.x >= 0 && legend.x + legend.width <= l.width + 0.5, `${l.id}: legend clipped`);
          }
          for (const t of l.titles) {
            assert.ok(
              t.x >= 0 && t.x + t.width <= l.width + 0.5,
              `${l.id}: title clipped ${JSON.stringify(t)}`,
            );
            for (const g of l.grids) assert.ok(!overlaps(t, g), `${l.id}: title overlaps a plot area`);
          }
        }
        assert.deepEqual(problems, []);
      } finally {
        await browser.close();
      }
    });
  });
});
