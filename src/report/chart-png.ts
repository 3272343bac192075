/**
 * PNG files of the report's charts, rasterized from their SVG with resvg (no browser, no native canvas).
 *
 * resvg draws text only with fonts it has loaded. The charts ask for the generic `sans-serif`, which is mapped to
 * DejaVu Sans (or Liberation Sans when only that is installed); the TTFs are searched for under /usr/share/fonts
 * and loaded explicitly besides the system fonts, so a container with a bare fontconfig still gets text. Without
 * any usable font the PNG still renders, lines, bars and axes intact, but with no text at all.
 */
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { Resvg } from "@resvg/resvg-js";

/** Preferred first: DejaVu Sans has the widest glyph coverage of the fonts commonly installed. */
const FONT_FAMILIES = [
  { family: "DejaVu Sans", files: /^DejaVuSans(-Bold)?\.ttf$/ },
  { family: "Liberation Sans", files: /^LiberationSans-(Regular|Bold)\.ttf$/ },
] as const;

export const DEFAULT_FONT_DIR = "/usr/share/fonts";

export interface ChartFonts {
  /** TTF files to load, sorted. */
  files: string[];
  /** The family `sans-serif` (and unstyled text) is drawn with. */
  family: string;
}

/**
 * The sans-serif TTFs (regular and bold) of the first family in FONT_FAMILIES found anywhere under `dir`. With
 * none found, no files and DejaVu Sans as the family name, which resvg may still find among the system fonts.
 */
export function findChartFonts(dir: string = DEFAULT_FONT_DIR): ChartFonts {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: "utf8" });
  } catch {
    entries = [];
  }
  for (const { family, files } of FONT_FAMILIES) {
    const found = entries.filter((e) => files.test(basename(e))).map((e) => join(dir, e));
    if (found.length > 0) return { files: found.sort(), family };
  }
  return { files: [], family: FONT_FAMILIES[0].family };
}

let defaultFonts: ChartFonts | undefined;

export interface PngOptions {
  /** Pixels per SVG unit: 2 for sharp text on high-density screens; 1 by default. */
  scale?: number;
  /** Fill behind the chart; the chart's own background shows otherwise. */
  background?: string;
  /** Fonts to draw text with; by default those `findChartFonts()` finds (looked up once per process). */
  fonts?: ChartFonts;
  /** Also load every font the system has (the default); off with no fonts given means text is not drawn. */
  loadSystemFonts?: boolean;
}

/** Rasterizes an SVG document to PNG bytes, `scale` times its own width and height. */
export function svgToPng(svg: string, options: PngOptions = {}): Uint8Array {
  const scale = options.scale ?? 1;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be positive, got ${scale}`);
  defaultFonts ??= findChartFonts();
  const fonts = options.fonts ?? defaultFonts;
  const resvg = new Resvg(svg, {
    font: {
      loadSystemFonts: options.loadSystemFonts ?? true,
      fontFiles: fonts.files,
      defaultFontFamily: fonts.family,
      sansSerifFamily: fonts.family,
    },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    ...(options.background !== undefined ? { background: options.background } : {}),
    logLevel: "off",
  });
  const png = resvg.render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
