"""Run by tests/sql/test_dbt.py with the dbt venv's Python (.venv-dbt), not the project's.

Parses and compiles the sql/dbt package offline through dbt's programmatic runner, in one
process so dbt starts once, and writes a JSON report to WORK_DIR/report.json (dbt prints
compiled SQL on stdout itself, even with --quiet). Usage:
    .venv-dbt/bin/python tests/sql/dbt_check.py PROJECT_DIR PROFILES_DIR WORK_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner

INLINE = {
    "two_fields": "{{ sixsense_udf.people_full(email='l.email', country='l.country') }}",
    "no_country": "{{ sixsense_udf.people_full(email='l.email') }}",
    "ten_fields": "{{ sixsense_udf.people_full(email='l.email', country='l.country', "
    "title='l.title', industry='l.industry') }}",
    "object": "{{ sixsense_udf.people_full(lead=\"object_construct('email', l.email)\") }}",
    "cached": "{{ sixsense_udf.people_full(email='l.email', country='l.country', route='cached') }}",
    "estimate_elsewhere": "{{ sixsense_udf.people_full(email='e', country='c', "
    "route='estimate', function_name='db.s.enrich') }}",
    "lead_key": "{{ sixsense_udf.lead_key('l.email', 'l.country') }}",
    "error_no_email": "{{ sixsense_udf.people_full(country='l.country') }}",
    "error_both": "{{ sixsense_udf.people_full(email='l.email', lead='o') }}",
    "error_route": "{{ sixsense_udf.people_full(email='l.email', route='later') }}",
}


def main(project: str, profiles: str, work: str) -> dict[str, Any]:
    common = [
        "--project-dir",
        project,
        "--profiles-dir",
        profiles,
        "--target-path",
        str(Path(work) / "target"),
        "--log-path",
        str(Path(work) / "logs"),
        "--no-version-check",
        "--no-send-anonymous-usage-stats",
        "--quiet",
    ]
    report: dict[str, Any] = {}

    parsed = dbtRunner().invoke(["parse", *common])
    report["parse"] = {"success": parsed.success, "error": str(parsed.exception or "")}
    if parsed.success:
        manifest = parsed.result
        report["models"] = {
            node.name: sorted(node.depends_on.macros) + sorted(node.depends_on.nodes)
            for node in manifest.nodes.values()
            if node.resource_type == "model"
        }
        report["tests"] = sorted(
            node.name for node in manifest.nodes.values() if node.resource_type == "test"
        )

    # The exploded models compile offline; the incremental model's is_incremental() asks the
    # warehouse whether the table exists, so it cannot compile without a connection.
    compiled = dbtRunner().invoke(
        [
            "compile",
            *common,
            "--no-populate-cache",
            "--select",
            "sixsense_people",
            "sixsense_scores",
            "sixsense_segments",
        ]
    )
    report["compile"] = {"success": compiled.success, "error": str(compiled.exception or "")}
    if compiled.success:
        # compile also picks the models' schema tests; keep the models
        report["compiled"] = {
            r.node.name: r.node.compiled_code
            for r in compiled.result.results
            if r.node.resource_type == "model"
        }

    report["inline"] = {}
    for name, code in INLINE.items():
        result = dbtRunner().invoke(["compile", *common, "--no-populate-cache", "--inline", code])
        if result.success:
            report["inline"][name] = {"sql": result.result.results[0].node.compiled_code.strip()}
        else:
            # dbt wraps the macro's compiler error ("In people_full(): ...") in a generic one.
            exception = result.exception
            chain = [
                exception,
                getattr(exception, "__cause__", None),
                getattr(exception, "__context__", None),
            ]
            report["inline"][name] = {"error": " | ".join(str(e) for e in chain if e)}
    return report


if __name__ == "__main__":
    project_dir, profiles_dir, work_dir = sys.argv[1:4]
    report = main(project_dir, profiles_dir, work_dir)
    (Path(work_dir) / "report.json").write_text(json.dumps(report))
