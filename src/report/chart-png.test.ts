import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findChartFonts, svgToPng } from "./chart-png.ts";
import { type ArmChartData, cdfChartOption, renderChartSvg } from "./charts.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the IHDR chunk, which the PNG format requires to come first. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  assert.equal(new TextDecoder().decode(png.subarray(12, 16)), "IHDR");
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

const ARM: ArmChartData = {
  name: "agg-round-robin",
  values: { time_to_first_token: Array.from({ length: 200 }, (_, i) => 20 + i * i * 0.1) },
  sendTimesS: [],
  ttftMs: [],
};

const TEXT_ONLY = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" viewBox="0 0 200 40">
<rect width="200" height="40" fill="#fff"/><text x="10" y="28" style="font-size:24px;font-family:sans-serif">Goodput</text>
</svg>`;

describe("svgToPng", () => {
  it("rasterizes a chart at its own size, or scaled", () => {
    const svg = renderChartSvg(cdfChartOption([ARM], "time_to_first_token"), { width: 640, height: 360 });
    const png = svgToPng(svg);
    assert.ok(png instanceof Uint8Array);
    assert.deepEqual(pngSize(png), { width: 640, height: 360 });
    assert.deepEqual(pngSize(svgToPng(svg, { scale: 2 })), { width: 1280, height: 720 });
    assert.deepEqual(svgToPng(svg), png, "same SVG, same bytes");
    assert.throws(() => svgToPng(svg, { scale: 0 }), RangeError);
  });

  it("still renders, without text, when no font is available", () => {
    const bare = svgToPng(TEXT_ONLY, { fonts: { files: [], family: "DejaVu Sans" }, loadSystemFonts: false });
    assert.deepEqual(pngSize(bare), { width: 200, height: 40 });
    const blank = svgToPng(TEXT_ONLY.replace(/<text.*<\/text>/, ""), { loadSystemFonts: false });
    assert.deepEqual(bare, blank, "the text is simply not drawn");
  });

  it("draws text with the fonts it finds", (t) => {
    const fonts = findChartFonts();
    if (fonts.files.length === 0) {
      t.skip("no DejaVu or Liberation font installed");
      return;
    }
    const withText = svgToPng(TEXT_ONLY, { fonts, loadSystemFonts: false });
    const blank = svgToPng(TEXT_ONLY.replace(/<text.*<\/text>/, ""), { fonts, loadSystemFonts: false });
    assert.notDeepEqual(withText, blank);
  });
});

describe("findChartFonts", () => {
  function tree(files: string[]): string {
    const dir = mkdtempSync(join(tmpdir(), "servelab-fonts-"));
    for (const f of files) {
      mkdirSync(join(dir, f, ".."), { recursive: true });
      writeFileSync(join(dir, f), "");
    }
    return dir;
  }

  it("prefers DejaVu Sans, regular and bold, wherever they sit", () => {
    const dir = tree([
      "truetype/liberation/LiberationSans-Regular.ttf",
      "truetype/dejavu/DejaVuSans-Bold.ttf",
      "truetype/dejavu/DejaVuSans.ttf",
      "truetype/dejavu/DejaVuSansMono.ttf",
    ]);
    try {
      assert.deepEqual(findChartFonts(dir), {
        family: "DejaVu Sans",
        files: [
          join(dir, "truetype/dejavu/DejaVuSans-Bold.ttf"),
          join(dir, "truetype/dejavu/DejaVuSans.ttf"),
        ],
      });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("falls back to Liberation Sans, then to nothing", () => {
    const dir = tree([
      "liberation-sans/LiberationSans-Regular.ttf",
      "liberation-sans/LiberationSans-Italic.ttf",
    ]);
    try {
      assert.deepEqual(findChartFonts(dir), {
        family: "Liberation Sans",
        files: [join(dir, "liberation-sans/LiberationSans-Regular.ttf")],
      });
      assert.deepEqual(findChartFonts(join(dir, "missing")), { family: "DejaVu Sans", files: [] });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
