"""Render the synthesized CloudWatch dashboard layout as an SVG picture for the README.

The picture is drawn from the dashboard body in the template (positions, sizes, titles), so it
cannot drift from what deploys: a test re-renders it and compares with the committed file.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

CELL_W, CELL_H = 40, 22
COLORS = {"metric": "#e8f1fb", "text": "#f4f4f4", "alarm": "#fdf1e6"}


def body_from_template(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard JSON with every CloudFormation token replaced by a readable placeholder."""
    dashboards = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    if len(dashboards) != 1:
        raise ValueError(f"expected one dashboard, found {len(dashboards)}")
    body = dashboards[0]["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        parts = body["Fn::Join"][1]
        body = "".join(p if isinstance(p, str) else _placeholder(p) for p in parts)
    return json.loads(body)


def _placeholder(token: dict[str, Any]) -> str:
    if "Ref" in token:
        return f"{{{token['Ref']}}}"
    if "Fn::GetStackOutput" in token:
        return f"{{{token['Fn::GetStackOutput']['OutputName']}}}"
    if "Fn::GetAtt" in token:
        return "{" + ".".join(token["Fn::GetAtt"]) + "}"
    return "{token}"


def _label(widget: dict[str, Any]) -> str:
    props = widget.get("properties", {})
    if widget["type"] == "text":
        return props.get("markdown", "").splitlines()[0].lstrip("# ")
    return props.get("title", widget["type"])


def render_svg(body: dict[str, Any]) -> str:
    widgets = body["widgets"]
    width = 24 * CELL_W
    height = max(w["y"] + w["height"] for w in widgets) * CELL_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">'
    ]
    for widget in widgets:
        x, y = widget["x"] * CELL_W, widget["y"] * CELL_H
        w, h = widget["width"] * CELL_W, widget["height"] * CELL_H
        kind = widget["type"]
        lines = len(widget.get("properties", {}).get("metrics", []))
        detail = f"{lines} metric line(s)" if kind == "metric" else kind
        out += [
            f'<rect x="{x + 2}" y="{y + 2}" width="{w - 4}" height="{h - 4}" rx="4" '
            f'fill="{COLORS.get(kind, "#fff")}" stroke="#6b7b8c"/>',
            f'<text x="{x + 10}" y="{y + 22}" font-weight="bold">{escape(_label(widget))}</text>',
            f'<text x="{x + 10}" y="{y + 40}" fill="#555">{escape(detail)}</text>',
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: render_dashboard.py <template.json> <out.svg>\n")
        return 2
    template = json.loads(Path(argv[1]).read_text())
    Path(argv[2]).write_text(render_svg(body_from_template(template)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
