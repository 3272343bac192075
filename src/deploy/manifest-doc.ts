/** One document of a manifest file, and a problem found in one. */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export interface ManifestDoc {
  file: string;
  /** 0-based position among the file's documents. */
  index: number;
  /** 1-based line where the document starts. */
  line: number;
  value: unknown;
  /** GPUs the file's header says the arm takes (files `deploy render` wrote). */
  expectedGpus?: number;
}

export interface ManifestIssue {
  /** `file:line Kind/name` */
  doc: string;
  path: string;
  rule: string;
  message: string;
}

export function docKind(d: ManifestDoc): string | undefined {
  return isObj(d.value) && typeof d.value.kind === "string" ? d.value.kind : undefined;
}

export function docName(d: ManifestDoc): string | undefined {
  const m = isObj(d.value) ? d.value.metadata : undefined;
  return isObj(m) && typeof m.name === "string" ? m.name : undefined;
}

export function docLabel(d: ManifestDoc): string {
  return `${d.file}:${d.line} ${docKind(d) ?? "(no kind)"}/${docName(d) ?? "(no name)"}`;
}
