import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { findExportFiles, readExportLines, readExportText } from "./export-files.ts";

/**
 * Two zstd frames, made with `printf '{"a":1}\n{"a":2}\n' | zstd -q -c` and `printf '{"a":3}\n' | zstd -q -c`:
 * AIPerf's exports are written by `zstandard`, and a streamed writer may emit several frames.
 */
const TWO_FRAMES = Buffer.from(
  "KLUv/QRYgQAAeyJhIjoxfQp7ImEiOjJ9Cu7trPIotS/9BFhBAAB7ImEiOjN9ChNbt88=",
  "base64",
);

const hasZstdCli = (() => {
  try {
    execFileSync("zstd", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), "export-files-"));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const collect = async (it: AsyncIterable<string>) => {
  const out: string[] = [];
  for await (const l of it) out.push(l);
  return out;
};

describe("AIPerf export files, plain or zstd-compressed", () => {
  it("finds profile_export.jsonl.zst and its summary, compressed or not", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "profile_export.jsonl.zst"), TWO_FRAMES);
    await writeFile(join(dir, "profile_export_aiperf.json"), "{}");
    assert.deepEqual(await findExportFiles(dir), {
      jsonl: join(dir, "profile_export.jsonl.zst"),
      summary: join(dir, "profile_export_aiperf.json"),
    });
    const plain = await tempDir();
    await writeFile(join(plain, "profile_export.jsonl"), "");
    await writeFile(join(plain, "profile_export.jsonl.zst"), TWO_FRAMES);
    assert.equal((await findExportFiles(plain)).jsonl, join(plain, "profile_export.jsonl"));
  });

  it("finds a prefixed export whose records and summary are both compressed", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "run7.jsonl.zst"), TWO_FRAMES);
    await writeFile(join(dir, "run7.json.zst"), TWO_FRAMES);
    await writeFile(join(dir, "run7_raw.jsonl.zst"), TWO_FRAMES);
    await writeFile(join(dir, "server_metrics_export.jsonl.zst"), TWO_FRAMES);
    assert.deepEqual(await findExportFiles(dir), {
      jsonl: join(dir, "run7.jsonl.zst"),
      summary: join(dir, "run7.json.zst"),
    });
  });

  it("streams the lines of a multi-frame zstd file and of a plain one alike", async () => {
    const dir = await tempDir();
    const zst = join(dir, "a.jsonl.zst");
    await writeFile(zst, TWO_FRAMES);
    assert.deepEqual(await collect(readExportLines(zst)), ['{"a":1}', '{"a":2}', '{"a":3}']);
    const plain = join(dir, "a.jsonl");
    await writeFile(plain, '{"a":1}\n\n{"a":2}');
    assert.deepEqual(await collect(readExportLines(plain)), ['{"a":1}', "", '{"a":2}']);
    assert.equal(await readExportText(zst), '{"a":1}\n{"a":2}\n{"a":3}\n');
  });

  it("decompresses a file larger than the decoder's chunks (zstd CLI, when installed)", {
    skip: hasZstdCli ? false : "no zstd CLI",
  }, async () => {
    const dir = await tempDir();
    const lines = Array.from({ length: 20000 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(i % 97) }));
    const plain = join(dir, "big.jsonl");
    await writeFile(plain, `${lines.join("\n")}\n`);
    execFileSync("zstd", ["-q", "-3", plain, "-o", `${plain}.zst`]);
    assert.deepEqual(await collect(readExportLines(`${plain}.zst`)), lines);
  });

  it("reports a truncated, corrupt or empty zstd file as FILE_READ naming it", async () => {
    const dir = await tempDir();
    const cases = {
      "cut.jsonl.zst": TWO_FRAMES.subarray(0, 20),
      "junk.jsonl.zst": Buffer.from("this is not zstd at all\n"),
      "empty.jsonl.zst": Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const file = join(dir, name);
      await writeFile(file, bytes);
      await assert.rejects(collect(readExportLines(file)), (e: Error & { code?: string }) => {
        assert.equal(e.code, "FILE_READ", name);
        assert.match(e.message, new RegExp(`${name.replace(".", "\\.")} is zstd-compressed`));
        return true;
      });
    }
  });
});
