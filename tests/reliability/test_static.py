"""Dependencies and code: pip-audit on the lock file, bandit at medium severity and above."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, Summary


def test_bandit_finds_nothing_of_medium_severity_or_more() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-r",
            "src",
            "--severity-level",
            "medium",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    findings = [
        f"{r['test_id']} {r['filename']}:{r['line_number']} {r['issue_text']}"
        for r in report["results"]
    ]
    # A finding may be silenced only with a reason on the same line (# noqa ... # nosec Bxxx).
    silenced = [
        f"{path}:{number}"
        for path in (ROOT / "src").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "# nosec" in line and not re.search(r"#\s*nosec\s+B\d{3}", line)
    ]
    Summary(
        "bandit",
        "none",
        {
            "findings": len(findings),
            "lines_of_code": report["metrics"]["_totals"]["loc"],
            "unexplained_nosec": len(silenced),
        },
    ).emit()
    assert not findings, findings
    assert not silenced, f"name the check a # nosec silences: {silenced}"


def test_pip_audit_of_the_lock_file(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    requirements = tmp_path / "requirements.txt"
    exported = subprocess.run(
        [
            *command,
            "export",
            "--format",
            "requirements-txt",
            "--no-hashes",
            "--no-emit-project",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    requirements.write_text(exported.stdout, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--timeout",
            "20",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.skip(
            f"pip-audit could not reach its vulnerability service: {done.stderr.strip()[-200:]}"
        )
    packages = report["dependencies"]
    audited = [p for p in packages if "skip_reason" not in p]
    vulnerable = [
        f"{p['name']} {p['version']}: {[v['id'] for v in p['vulns']]}"
        for p in audited
        if p.get("vulns")
    ]
    Summary(
        "pip_audit",
        "none",
        {"packages": len(packages), "audited": len(audited), "vulnerable": len(vulnerable)},
    ).emit()
    if not audited:
        pytest.skip(
            f"pip-audit reached no vulnerability data for any of {len(packages)} packages "
            "(the PyPI JSON API is not reachable from here); nothing was audited"
        )
    assert not vulnerable, vulnerable
