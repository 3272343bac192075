#!/usr/bin/env python3
"""Checks an artifact directory against the field types of AIPerf's own models, with no AIPerf dependency.

Written from ai-dynamo/aiperf's record and export models (MetricRecordMetadata, MetricValue, ErrorDetails,
JsonExportData): profile_export.jsonl, profile_export_aiperf.json and, when present, inputs.json.
Usage: check-aiperf-files.py DIR [DIR...]. Prints one line per problem (file:line: field: what) and exits 1 if any.
"""
import json
import os
import sys

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def is_int(v):
    # bool is an int in Python; AIPerf's int fields reject it, and JSON 1.0 loads as a float.
    return type(v) is int


def is_num(v):
    return type(v) in (int, float)


def check_type(where, name, v, kind, optional):
    if v is None:
        if not optional:
            problem(where, f"{name} is required, got null")
        return
    ok = {
        "int": is_int(v),
        "str": isinstance(v, str),
        "bool": type(v) is bool,
    }[kind]
    if not ok:
        problem(where, f"{name} must be {kind}{' or null' if optional else ''}, got {type(v).__name__} {v!r}")


# MetricRecordMetadata (export model): name -> (type, optional)
METADATA = {
    "session_num": ("int", False),
    "x_request_id": ("str", True),
    "x_correlation_id": ("str", True),
    "conversation_id": ("str", True),
    "turn_index": ("int", True),
    "request_start_ns": ("int", False),
    "request_ack_ns": ("int", True),
    "request_end_ns": ("int", False),
    "worker_id": ("str", False),
    "record_processor_id": ("str", False),
    "was_cancelled": ("bool", True),
    "cancellation_time_ns": ("int", True),
}


def check_record(where, rec):
    if not isinstance(rec, dict):
        problem(where, "a record must be an object")
        return
    for key in ("metadata", "metrics", "error"):
        if key not in rec:
            problem(where, f"{key} is missing")
    md = rec.get("metadata")
    if not isinstance(md, dict):
        problem(where, "metadata must be an object")
    else:
        for name, (kind, optional) in METADATA.items():
            if name not in md and not optional:
                problem(where, f"metadata.{name} is required")
                continue
            check_type(where, f"metadata.{name}", md.get(name), kind, optional)
        if md.get("benchmark_phase") not in ("warmup", "profiling"):
            problem(where, f"metadata.benchmark_phase must be warmup or profiling, got {md.get('benchmark_phase')!r}")
    metrics = rec.get("metrics")
    if not isinstance(metrics, dict):
        problem(where, "metrics must be an object")
    else:
        for tag, mv in metrics.items():
            if not isinstance(mv, dict) or set(mv) != {"value", "unit"}:
                problem(where, f"metrics.{tag} must be {{value, unit}}")
                continue
            v = mv["value"]
            if not (is_num(v) or (isinstance(v, list) and all(is_num(x) for x in v))):
                problem(where, f"metrics.{tag}.value must be a number or a list of numbers")
            if not isinstance(mv["unit"], str):
                problem(where, f"metrics.{tag}.unit must be a string")
    err = rec.get("error")
    if err is not None:
        if not isinstance(err, dict):
            problem(where, "error must be an object or null")
        else:
            check_type(where, "error.code", err.get("code"), "int", True)
            check_type(where, "error.type", err.get("type"), "str", True)
            check_type(where, "error.message", err.get("message"), "str", False)


def check_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = json.loads(line)
            except ValueError as e:
                problem(where, f"not JSON: {e}")
                continue
            check_record(where, rec)


STAT_KEYS = ("avg", "min", "max", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "std")


def check_summary(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for key, v in doc.items():
        if key in ("input_config", "was_cancelled", "error_summary", "start_time", "end_time"):
            continue
        if key in ("schema_version", "aiperf_version", "benchmark_id", "telemetry_data"):
            continue
        if v is None:
            continue
        if not isinstance(v, dict) or not isinstance(v.get("unit"), str):
            problem(path, f"{key} must be a metric object with a unit")
            continue
        for stat in STAT_KEYS:
            if stat in v and v[stat] is not None and not is_num(v[stat]):
                problem(path, f"{key}.{stat} must be a number")
    ic = doc.get("input_config")
    if not isinstance(ic, dict):
        problem(path, "input_config must be an object")
    else:
        ep = ic.get("endpoint")
        if not isinstance(ep, dict) or not all(isinstance(m, str) for m in ep.get("model_names", [None])):
            problem(path, "input_config.endpoint.model_names must be a list of strings")
        for section in ("input", "loadgen"):
            if section in ic and not isinstance(ic[section], dict):
                problem(path, f"input_config.{section} must be an object")
        goodput = (ic.get("input") or {}).get("goodput")
        if goodput is not None and not (isinstance(goodput, dict) and all(is_num(x) for x in goodput.values())):
            problem(path, "input_config.input.goodput must map metric tags to numbers")
    if type(doc.get("was_cancelled")) is not bool:
        problem(path, "was_cancelled must be a boolean")
    for i, e in enumerate(doc.get("error_summary") or []):
        if not is_int(e.get("count")) or not isinstance(e.get("error_details"), dict):
            problem(path, f"error_summary[{i}] must be {{error_details, count: int}}")
    for key in ("start_time", "end_time"):
        if not isinstance(doc.get(key), str):
            problem(path, f"{key} must be an ISO timestamp string")


def check_inputs(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        problem(path, "data must be a list")
        return
    for i, s in enumerate(data):
        if not isinstance(s.get("session_id"), str) or not isinstance(s.get("payloads"), list):
            problem(path, f"data[{i}] must be {{session_id: str, payloads: list}}")


def check_raw(path):
    """RawRecordInfo: the record's metadata, the request as sent, status and every response with its arrival."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            rec = json.loads(line)
            md = rec.get("metadata")
            if not isinstance(md, dict):
                problem(where, "metadata must be an object")
            else:
                for name, (kind, optional) in METADATA.items():
                    check_type(where, f"metadata.{name}", md.get(name), kind, optional)
            check_type(where, "start_perf_ns", rec.get("start_perf_ns"), "int", False)
            check_type(where, "status", rec.get("status"), "int", True)
            for i, r in enumerate(rec.get("responses") or []):
                check_type(where, f"responses[{i}].perf_ns", r.get("perf_ns"), "int", False)
                check_type(where, f"responses[{i}].text", r.get("text"), "str", False)


def main(dirs):
    for d in dirs:
        jsonl = os.path.join(d, "profile_export.jsonl")
        summary = os.path.join(d, "profile_export_aiperf.json")
        if not os.path.exists(jsonl):
            problem(d, "no profile_export.jsonl")
        else:
            check_jsonl(jsonl)
        if not os.path.exists(summary):
            problem(d, "no profile_export_aiperf.json")
        else:
            check_summary(summary)
        raw = os.path.join(d, "profile_export_raw.jsonl")
        if os.path.exists(raw):
            check_raw(raw)
        inputs = os.path.join(d, "inputs.json")
        if os.path.exists(inputs):
            check_inputs(inputs)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: check-aiperf-files.py DIR [DIR...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
