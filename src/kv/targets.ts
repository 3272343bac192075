import { ServelabError } from "../errors.ts";

/** A routing target: one attention-DP rank of one worker (a DEP8 worker exposes 8 targets). */
export interface Target {
  workerId: string;
  dpRank: number;
}

export function targetLabel(t: Target): string {
  return `${t.workerId}/${t.dpRank}`;
}

/**
 * Dense integer ids for targets, shared by the KV index, the load tracker and the routers so per-target state can
 * live in typed arrays. Ids of removed targets are reused, lowest first, which keeps the id space compact.
 */
export class TargetRegistry {
  private readonly idOf = new Map<string, number>();
  private readonly byId: (Target | undefined)[] = [];
  private readonly freeIds: number[] = [];

  /** The target's id, registering it if new. */
  add(t: Target): number {
    const key = targetLabel(t);
    const known = this.idOf.get(key);
    if (known !== undefined) return known;
    if (!Number.isInteger(t.dpRank) || t.dpRank < 0) {
      throw new ServelabError("USAGE", `dp_rank must be a non-negative integer, got ${t.dpRank}`);
    }
    this.freeIds.sort((a, b) => b - a);
    const id = this.freeIds.pop() ?? this.byId.length;
    this.byId[id] = { workerId: t.workerId, dpRank: t.dpRank };
    this.idOf.set(key, id);
    return id;
  }

  /** The id, or −1 when the target is not registered. */
  find(t: Target): number {
    return this.idOf.get(targetLabel(t)) ?? -1;
  }

  get(id: number): Target {
    const t = this.byId[id];
    if (!t) throw new ServelabError("ROUTER_UNKNOWN_TARGET", `no target with id ${id}`);
    return t;
  }

  remove(id: number): void {
    const t = this.byId[id];
    if (!t) return;
    this.idOf.delete(targetLabel(t));
    this.byId[id] = undefined;
    this.freeIds.push(id);
  }

  /** Ids of every target of a worker, in dp_rank order. */
  idsOfWorker(workerId: string): number[] {
    const ids: number[] = [];
    this.byId.forEach((t, id) => {
      if (t && t.workerId === workerId) ids.push(id);
    });
    return ids.sort((a, b) => this.byId[a]!.dpRank - this.byId[b]!.dpRank);
  }

  /** Registered ids in ascending order. */
  ids(): number[] {
    const ids: number[] = [];
    this.byId.forEach((t, id) => {
      if (t) ids.push(id);
    });
    return ids;
  }

  /** One more than the largest id ever handed out: the length per-target arrays need. */
  get idLimit(): number {
    return this.byId.length;
  }

  get size(): number {
    return this.idOf.size;
  }
}
