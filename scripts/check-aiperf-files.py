#!/usr/bin/env python3
"""Checks an artifact directory against the field types of AIPerf's own models, with no AIPerf dependency.

Written from ai-dynamo/aiperf's record and export models (MetricRecordMetadata, MetricValue, ErrorDetails,
JsonExportData, ServerMetricsExportData): profile_export.jsonl, profile_export_aiperf.json and, when present,
inputs.json, profile_export_raw.jsonl and server_metrics_export.json.
Usage: check-aiperf-files.py DIR|server_metrics_export.json [...]. Prints one line per problem
(file:line: field: what) and exits 1 if any.
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


# ServerMetricsEndpointInfo: name -> (type, optional); float fields take ints too, as pydantic's do.
ENDPOINT_INFO = {
    "total_fetches": ("int", False),
    "first_fetch_ns": ("int", False),
    "last_fetch_ns": ("int", False),
    "avg_fetch_latency_ms": ("num", False),
    "unique_updates": ("int", False),
    "first_update_ns": ("int", False),
    "last_update_ns": ("int", False),
    "duration_seconds": ("num", False),
    "avg_update_interval_ms": ("num", False),
    "median_update_interval_ms": ("num", True),
}
SERIES_KEYS = {"endpoint_url", "labels", "stats", "timeslices", "buckets"}
INT_STATS = {"count"}
FLOAT_STATS = {
    "avg", "min", "max", "std", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99",
    "total", "rate", "rate_avg", "rate_min", "rate_max", "rate_std",
    "sum", "count_rate", "sum_rate",
    "p1_estimate", "p5_estimate", "p10_estimate", "p25_estimate", "p50_estimate",
    "p75_estimate", "p90_estimate", "p95_estimate", "p99_estimate",
}  # fmt: skip
METRIC_TYPES = {"gauge", "counter", "histogram", "unknown"}


def check_value(where, name, v, kind, optional):
    if kind == "num":
        if v is None and optional:
            return
        if not is_num(v):
            problem(where, f"{name} must be a number{' or null' if optional else ''}, got {v!r}")
        return
    check_type(where, name, v, kind, optional)


def check_str_dict(where, name, v, value_kind):
    if v is None:
        return
    if not isinstance(v, dict):
        problem(where, f"{name} must be an object or null")
        return
    for k, x in v.items():
        if value_kind == "str" and not isinstance(x, str):
            problem(where, f"{name}.{k} must be str, got {x!r}")
        if value_kind == "int" and not is_int(x):
            problem(where, f"{name}.{k} must be int, got {x!r}")


def check_server_metrics(path):
    """ServerMetricsExportData; its nested models forbid unknown keys."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        problem(path, "must be an object")
        return
    check_type(path, "schema_version", doc.get("schema_version"), "str", False)
    check_type(path, "aiperf_version", doc.get("aiperf_version"), "str", True)
    check_type(path, "benchmark_id", doc.get("benchmark_id"), "str", True)
    if not isinstance(doc.get("input_config", {}), dict):
        problem(path, "input_config must be an object")
    summary = doc.get("summary")
    if not isinstance(summary, dict):
        problem(path, "summary is required and must be an object")
    else:
        extra = set(summary) - {"endpoints_configured", "endpoints_successful", "start_time", "end_time", "endpoint_info"}
        if extra:
            problem(path, f"summary has unknown keys {sorted(extra)}")
        for key in ("endpoints_configured", "endpoints_successful"):
            v = summary.get(key)
            if not isinstance(v, list) or not all(isinstance(u, str) for u in v):
                problem(path, f"summary.{key} must be a list of str")
        for key in ("start_time", "end_time"):
            if not isinstance(summary.get(key), str):
                problem(path, f"summary.{key} must be an ISO timestamp string")
        info = summary.get("endpoint_info")
        if info is not None and not isinstance(info, dict):
            problem(path, "summary.endpoint_info must be an object or null")
        for url, ei in (info or {}).items():
            where = f"{path}: summary.endpoint_info[{url}]"
            if not isinstance(ei, dict):
                problem(where, "must be an object")
                continue
            if set(ei) - set(ENDPOINT_INFO):
                problem(where, f"unknown keys {sorted(set(ei) - set(ENDPOINT_INFO))}")
            for name, (kind, optional) in ENDPOINT_INFO.items():
                if name not in ei and not optional:
                    problem(where, f"{name} is required")
                    continue
                check_value(where, name, ei.get(name), kind, optional)
    metrics = doc.get("metrics", {})
    if not isinstance(metrics, dict):
        problem(path, "metrics must be an object")
        return
    for name, m in metrics.items():
        where = f"{path}: metrics[{name}]"
        if not isinstance(m, dict):
            problem(where, "must be an object")
            continue
        if set(m) - {"type", "description", "unit", "series"}:
            problem(where, f"unknown keys {sorted(set(m) - {'type', 'description', 'unit', 'series'})}")
        if m.get("type") not in METRIC_TYPES:
            problem(where, f"type must be one of {sorted(METRIC_TYPES)}, got {m.get('type')!r}")
        check_type(where, "description", m.get("description"), "str", False)
        check_type(where, "unit", m.get("unit"), "str", True)
        series = m.get("series", [])
        if not isinstance(series, list):
            problem(where, "series must be a list")
            continue
        for i, s in enumerate(series):
            sw = f"{where}.series[{i}]"
            if not isinstance(s, dict):
                problem(sw, "must be an object")
                continue
            if set(s) - SERIES_KEYS:
                problem(sw, f"unknown keys {sorted(set(s) - SERIES_KEYS)}")
            check_type(sw, "endpoint_url", s.get("endpoint_url"), "str", True)
            check_str_dict(sw, "labels", s.get("labels"), "str")
            check_str_dict(sw, "buckets", s.get("buckets"), "int")
            stats = s.get("stats")
            if stats is None:
                continue
            if not isinstance(stats, dict):
                problem(sw, "stats must be an object or null")
                continue
            for k, v in stats.items():
                if k in INT_STATS:
                    check_type(sw, f"stats.{k}", v, "int", True)
                elif k in FLOAT_STATS:
                    check_value(sw, f"stats.{k}", v, "num", True)
                else:
                    problem(sw, f"stats has an unknown key {k!r}")


def main(dirs):
    for d in dirs:
        if os.path.basename(d) == "server_metrics_export.json":
            check_server_metrics(d)
            continue
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
        server_metrics = os.path.join(d, "server_metrics_export.json")
        if os.path.exists(server_metrics):
            check_server_metrics(server_metrics)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: check-aiperf-files.py DIR|server_metrics_export.json [...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
