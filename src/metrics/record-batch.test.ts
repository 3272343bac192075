import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RequestRecord } from "./record.ts";
import { RecordPacker, unpackRecords } from "./record-batch.ts";
import { makeRecord, smallRun } from "./record-fixtures.ts";

/** A record with its chunk times as an array and without the fields set to undefined (absent and undefined are one). */
const plain = (r: RequestRecord) =>
  Object.fromEntries(Object.entries({ ...r, chunkNs: [...r.chunkNs] }).filter(([, v]) => v !== undefined));

describe("record batches", () => {
  it("unpack to the records that were packed, optional fields included", () => {
    const records: RequestRecord[] = [
      ...smallRun(),
      {
        ...makeRecord({ session: 7, startMs: 1, chunksMs: [2, 3], reasoning: 4, ackMs: 1.5 }),
        target: "w/3",
      },
      { ...makeRecord({ session: 8, startMs: 1, chunksMs: [], cancelled: true }), cachedTokens: 64 },
      { ...makeRecord({ session: 9, startMs: 2, chunksMs: [4], cancelled: false }), error: null, target: "" },
      { ...makeRecord({ session: 10, startMs: 2, chunksMs: [4] }), error: undefined },
    ];
    const packer = new RecordPacker();
    for (const r of records) packer.add(r);
    assert.equal(packer.count, records.length);
    const batch = packer.take();
    assert.equal(packer.count, 0);
    assert.deepEqual(unpackRecords(batch).map(plain), records.map(plain));
    // The packer starts afresh after a hand-over.
    packer.add(records[0]!);
    assert.deepEqual(unpackRecords(packer.take()).map(plain), [plain(records[0]!)]);
  });
});
