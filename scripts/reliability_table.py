"""Print every figure the reliability tests wrote to results/reliability, as one table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parents[1] / "results" / "reliability"


def markdown(records: list[dict[str, object]]) -> str:
    """The same table in Markdown, for notes and pull requests (``--markdown``)."""
    lines = ["| test | database | size | figures |", "|---|---|---|---|"]
    for record in records:
        figures = {k: v for k, v in record.items() if k not in ("test", "database", "size")}
        text = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in figures.items()
        )
        lines.append(
            f"| {record['test']} | {record['database']} | {record['size']} | {text.replace('|', '/')} |"
        )
    return "\n".join(lines)


def main() -> int:
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    if not records:
        print("no results in results/reliability", file=sys.stderr)
        return 1
    if "--markdown" in sys.argv[1:]:
        print(markdown(records))
        return 0
    table = Table("test", "database", "size", "figures", title="purse reliability", show_lines=True)
    for record in records:
        figures = {k: v for k, v in record.items() if k not in ("test", "database", "size")}
        table.add_row(
            record["test"],
            record["database"],
            record["size"],
            ", ".join(f"{key}={value}" for key, value in figures.items()),
        )
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
