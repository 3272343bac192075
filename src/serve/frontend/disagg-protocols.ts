import type { DisaggProtocol, DisaggProtocolName } from "../disagg/protocol.ts";
import { sglangProtocol } from "../disagg/sglang.ts";
import { trtllmProtocol } from "../disagg/trtllm.ts";
import { vllmNixlProtocol } from "../disagg/vllm-nixl.ts";

export const DISAGG_PROTOCOL_NAMES: readonly DisaggProtocolName[] = ["vllm-nixl", "sglang", "trtllm"];

/** The P/D hand-over adapter for an engine family (the mock worker speaks vLLM + NIXL). */
export function disaggProtocolNamed(name: DisaggProtocolName): DisaggProtocol {
  switch (name) {
    case "vllm-nixl":
      return vllmNixlProtocol();
    case "sglang":
      return sglangProtocol();
    case "trtllm":
      return trtllmProtocol();
  }
}
