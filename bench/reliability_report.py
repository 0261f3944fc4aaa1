"""Reliability and security report: run the fault, fuzz, hostile-input, access and concurrency
tests, then print what they measured as one table.

    .venv/bin/python bench/reliability_report.py            # the default suite (a few minutes)
    .venv/bin/python bench/reliability_report.py --long     # 10,000 fuzzed inputs per parser
    .venv/bin/python bench/reliability_report.py --json out.json

The tests run in a pytest child process with ``RELIABILITY_LOG`` set: they append what they
measured (inputs per parser, requests served, documents lost...) as JSON lines
(``tests/reliability_log.py``); pytest's JUnit XML gives each test's outcome. Faults already
covered by older tests (kill -9 during ingestion and training, a damaged index) are run and
counted too. Exit status 0 when every fault was survived and no committed data was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability_log import LOG_ENV, read  # noqa: E402

LONG_FUZZ_EXAMPLES = 10_000

# test node id (or its prefix before "[") -> the fault it injects
FAULTS = {
    "tests/store/test_ingest_failures.py::test_kill_9_during_ingestion_leaves_whole_documents_and_rerun_finishes": "kill -9 during ingestion (40-file folder)",
    "tests/adapters/test_training.py::test_kill_9_then_resume_continues_from_checkpoint_in_the_same_order": "kill -9 during training, then resume",
    "tests/adapters/test_faults_export.py::test_kill_9_during_export": "kill -9 during export",
    "tests/store/test_knowledge_base.py::test_missing_or_corrupt_index_is_rebuilt_on_open[delete]": "hnswlib index deleted",
    "tests/store/test_knowledge_base.py::test_missing_or_corrupt_index_is_rebuilt_on_open[truncate]": "hnswlib index truncated",
    "tests/store/test_knowledge_base.py::test_missing_or_corrupt_index_is_rebuilt_on_open[garbage]": "hnswlib index replaced by garbage",
    "tests/store/test_knowledge_base.py::test_missing_or_corrupt_index_is_rebuilt_on_open[stale-sidecar]": "hnswlib index out of date (sidecar)",
    "tests/store/test_knowledge_base.py::test_write_from_another_process_is_noticed": "another process writes the KB",
    "tests/reliability/test_faults.py::test_database_locked_by_another_process_waits_then_ingests": "SQLite locked by another process (waits)",
    "tests/reliability/test_faults.py::test_database_locked_too_long_is_a_clear_error_and_nothing_half_written": "SQLite locked past the busy timeout",
    "tests/reliability/test_faults.py::test_full_disk_during_ingestion": "full disk during ingestion",
    "tests/adapters/test_faults_export.py::test_full_disk_during_export": "full disk during export",
    "tests/reliability/test_faults.py::test_chat_model_deleted_while_loaded": "chat model file deleted while loaded",
    "tests/reliability/test_faults.py::test_chat_model_overwritten_in_place_while_loaded_does_not_crash": "chat model file overwritten while loaded",
}
SUITE = [
    "tests/store/test_fuzz_parsers.py",
    "tests/reliability/test_hostile_input.py",
    "tests/reliability/test_faults.py",
    "tests/adapters/test_faults_export.py",
    "tests/ui/test_http_access.py",
    "tests/ui/test_concurrency_http.py",
    "tests/store/test_ingest_failures.py::test_kill_9_during_ingestion_leaves_whole_documents_and_rerun_finishes",
    "tests/store/test_ingest_failures.py::test_every_bad_file_gets_its_reason_and_the_good_ones_are_added",
    "tests/store/test_knowledge_base.py::test_missing_or_corrupt_index_is_rebuilt_on_open",
    "tests/store/test_knowledge_base.py::test_write_from_another_process_is_noticed",
    "tests/adapters/test_training.py::test_kill_9_then_resume_continues_from_checkpoint_in_the_same_order",
    "tests/store/test_parsing.py::test_html_deep_nesting",
    "tests/store/test_parsing.py::test_docx_zip_bomb",
    "tests/store/test_uploads.py::test_stage_upload_stays_inside_the_uploads_folder",
    "tests/assistant/test_chat.py::test_planted_instruction_is_not_obeyed",
]
HOSTILE = (
    "tests/reliability/test_hostile_input.py",
    "tests/store/test_ingest_failures.py::test_every_bad_file",
    "tests/store/test_parsing.py::test_html_deep_nesting",
    "tests/store/test_parsing.py::test_docx_zip_bomb",
    "tests/store/test_uploads.py::",
    "tests/assistant/test_chat.py::test_planted",
)


def run_suite(log: Path, junit: Path, long: bool, extra: list[str]) -> int:
    env = {**os.environ, LOG_ENV: str(log), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if long:
        env["DOMAINSMITH_FUZZ_EXAMPLES"] = str(LONG_FUZZ_EXAMPLES)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rfEx",
        f"--junitxml={junit}",
        *SUITE,
        *extra,
    ]
    print("running:", " ".join(command[3:7]), f"... ({len(SUITE)} targets)", file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, stdout=sys.stderr).returncode


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """node id -> (passed | failed | error | xfailed | skipped, message)."""
    results = {}
    if not junit.is_file():
        return results
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        node = f"{path}::{case.get('name')}"
        state, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                state, message = ("failed" if child.tag == "failure" else "error"), child.get("message", "")
            elif child.tag == "skipped":
                kind = child.get("type", "")
                state = "xfailed" if "xfail" in kind else "skipped"
                message = child.get("message", "")
        results[node] = (state, message)
    return results


def survived(state: str) -> str:
    return "yes" if state == "passed" else f"NO ({state})"


def build_report(results: dict[str, tuple[str, str]], rows: list[dict]) -> dict:
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    lost_by_fault = defaultdict(int)
    for row in by_kind["fault"] + by_kind["concurrency"]:
        lost_by_fault[row.get("name", "concurrency")] += int(row.get("lost", 0) or 0)
    faults = []
    for node, name in FAULTS.items():
        state = results.get(node, ("not run", ""))[0]
        faults.append({"fault": name, "test": node, "outcome": state, "survived": survived(state)})
    fuzz = {row["parser"]: row for row in by_kind["fuzz"]}
    hostile = {node: state for node, (state, _) in results.items() if node.startswith(HOSTILE)}
    concurrency = by_kind["concurrency"][-1] if by_kind["concurrency"] else {}
    access = {k: v for row in by_kind["access"] for k, v in row.items() if k not in ("kind", "time")}
    failed_tests = sorted(n for n, (s, _) in results.items() if s in ("failed", "error"))
    lost = sum(lost_by_fault.values())
    return {
        "faults": faults,
        "fuzz": fuzz,
        "hostile": hostile,
        "concurrency": concurrency,
        "access": access,
        "data_lost": lost,
        "failed_tests": failed_tests,
        "ok": not failed_tests and lost == 0 and all(f["outcome"] == "passed" for f in faults),
    }


def render(report: dict, seconds: float) -> str:
    out = ["", "Reliability report", "=" * 18, ""]
    width = max(len(f["fault"]) for f in report["faults"])
    out.append(f"{'Fault injected':<{width}}  Survived")
    out.append(f"{'-' * width}  --------")
    out += [f"{f['fault']:<{width}}  {f['survived']}" for f in report["faults"]]
    survived_count = sum(f["outcome"] == "passed" for f in report["faults"])
    out += ["", f"Faults injected: {len(report['faults'])}, survived: {survived_count}", ""]
    out.append(f"{'Parser':<10} {'inputs tried':>12} {'parsed':>8} {'typed errors':>13} {'other':>6} {'slowest':>8}")
    for parser, row in sorted(report["fuzz"].items()):
        typed = sum(row.get("typed_errors", {}).values())
        other = row["inputs"] - row["parsed"] - typed
        out.append(
            f"{parser:<10} {row['inputs']:>12,} {row['parsed']:>8,} {typed:>13,} {other:>6} {row['max_seconds']:>7.2f}s"
        )
    total = sum(row["inputs"] for row in report["fuzz"].values())
    out += [f"{'total':<10} {total:>12,}", ""]
    hostile = report["hostile"]
    out.append(f"Hostile-input checks passed: {sum(s == 'passed' for s in hostile.values())}/{len(hostile)}")
    conc = report["concurrency"]
    if conc:
        out.append(
            f"Concurrent requests served: {conc['requests']} ({conc['chats']} streaming chats, "
            f"{conc['uploads']} upload, {conc['searches']} searches) in {conc['seconds']} s, "
            f"errors: {conc['errors']}"
        )
    else:
        out.append("Concurrent requests served: not measured (the test did not run)")
    access = report["access"]
    if access:
        open_routes = access.get("open_without_login", [])
        out.append(
            f"HTTP routes checked without a login: {access.get('routes', '?')}, answered anyway: "
            f"{len(open_routes)}; listening on: {', '.join(access.get('bind', [])) or '?'}"
        )
    out.append(f"Data lost (committed documents or models missing or changed after a fault): {report['data_lost']}")
    if report["failed_tests"]:
        out += ["", "FAILED: " + ", ".join(report["failed_tests"])]
    out += ["", f"({seconds:.0f} s)"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help=f"fuzz {LONG_FUZZ_EXAMPLES:,} inputs per parser")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        log, junit = Path(tmp) / "log.jsonl", Path(tmp) / "junit.xml"
        run_suite(log, junit, args.long, args.pytest_args)
        report = build_report(outcomes(junit), read(log))
    print(render(report, time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
