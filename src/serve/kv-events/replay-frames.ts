import { ServelabError } from "../../errors.ts";

/**
 * The frames of vLLM's replay protocol. A DEALER asks with `[b"", start_seq]` (the ROUTER sees the peer's identity
 * in front); the ROUTER answers with every buffered batch from `start_seq` on, then an end marker. The reply's
 * layout changed in vLLM 0.26 (PR #45177), which added the topic frame:
 *
 *   | version | batch                      | end marker                    |
 *   | ≤ 0.25  | `[b"", seq, payload]`      | `[b"", END_SEQ, b""]`         |
 *   | ≥ 0.26  | `[b"", topic, seq, payload]` | `[b"", b"", END_SEQ, b""]`  |
 *
 * (as the DEALER receives them; SGLang answers in the ≤ 0.25 layout).
 */
export type ReplayLayout = "0.26" | "0.25";
export const REPLAY_LAYOUTS: readonly ReplayLayout[] = ["0.26", "0.25"];

/** `(-1).to_bytes(8, "big", signed=True)`. */
export const END_SEQ = 0xffff_ffff_ffff_ffffn;
const EMPTY = new Uint8Array(0);

export function seqBytes(seq: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, seq, false);
  return b;
}

export function readSeq(frame: Uint8Array): bigint | null {
  if (frame.length !== 8) return null;
  return new DataView(frame.buffer, frame.byteOffset, 8).getBigUint64(0, false);
}

/** What a DEALER sends to ask for batches from `start` on. */
export function replayRequest(start: bigint): Uint8Array[] {
  return [EMPTY, seqBytes(start)];
}

/**
 * The start sequence of a request as the ROUTER receives it (`[identity, b"", start_seq]`), or null for anything
 * else, which vLLM logs and ignores.
 */
export function parseReplayRequest(frames: readonly Uint8Array[]): bigint | null {
  if (frames.length !== 3 || frames[1]!.length !== 0) return null;
  return readSeq(frames[2]!);
}

/** One replayed batch as the ROUTER sends it (identity first). */
export function replayBatchFrames(
  identity: Uint8Array,
  layout: ReplayLayout,
  topic: Uint8Array,
  seq: Uint8Array,
  payload: Uint8Array,
): Uint8Array[] {
  return layout === "0.26" ? [identity, EMPTY, topic, seq, payload] : [identity, EMPTY, seq, payload];
}

export function replayEndFrames(identity: Uint8Array, layout: ReplayLayout): Uint8Array[] {
  const end = seqBytes(END_SEQ);
  return layout === "0.26" ? [identity, EMPTY, EMPTY, end, EMPTY] : [identity, EMPTY, end, EMPTY];
}

export type ReplayReply =
  | { kind: "end" }
  | { kind: "batch"; topic: Uint8Array; seq: bigint; seqFrame: Uint8Array; payload: Uint8Array };

/**
 * Reads a reply as a DEALER receives it, in any layout publishers have used: leading empty frames are dropped
 * (which also drops an empty topic); then nothing left, an empty payload, or END_SEQ in the sequence position ends
 * the replay (covering the early `[b"", b""]` marker too); otherwise the last frame is the payload, the one before
 * the sequence, and an optional earlier one the topic. Throws KV_EVENT_DECODE for a malformed sequence frame.
 */
export function parseReplayReply(frames: readonly Uint8Array[], where: string): ReplayReply {
  let i = 0;
  while (i < frames.length && frames[i]!.length === 0) i++;
  const rest = frames.slice(i);
  if (rest.length === 0) return { kind: "end" };
  const payload = frames[frames.length - 1]!;
  if (payload.length === 0) return { kind: "end" };
  if (rest.length < 2 || rest.length > 3)
    throw new ServelabError(
      "KV_EVENT_DECODE",
      `${where}: replay reply: expected [topic?, seq, payload], got ${frames.length} frames`,
    );
  const seqFrame = rest[rest.length - 2]!;
  const seq = readSeq(seqFrame);
  if (seq === null)
    throw new ServelabError(
      "KV_EVENT_DECODE",
      `${where}: replay reply: the sequence frame has ${seqFrame.length} bytes, expected 8`,
    );
  if (seq === END_SEQ) return { kind: "end" };
  return { kind: "batch", topic: rest.length === 3 ? rest[0]! : EMPTY, seq, seqFrame, payload };
}
