"""Render the synthesized CloudWatch dashboards' layout as an SVG picture for the README.

The picture is drawn from the dashboard bodies in the template (positions, sizes, titles), so it
cannot drift from what deploys: a test re-renders it and compares with the committed file.
"""

from __future__ import annotations

import json
import re
import sys
from html import escape
from pathlib import Path
from typing import Any

CELL_W, CELL_H, BAND_H = 40, 22, 30
COLORS = {"metric": "#e8f1fb", "text": "#f4f4f4", "alarm": "#fdf1e6"}


def bodies_from_template(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each dashboard's JSON by logical id, in template order, with every CloudFormation token
    replaced by a readable placeholder."""
    bodies = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = resource["Properties"]["DashboardBody"]
        if isinstance(body, dict):
            parts = body["Fn::Join"][1]
            body = "".join(p if isinstance(p, str) else _placeholder(p) for p in parts)
        bodies[logical_id] = json.loads(body)
    if not bodies:
        raise ValueError("no dashboard in the template")
    return bodies


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
        heading = props.get("markdown", "").splitlines()[0].lstrip("# ")
        # The monitoring library's headings link the resource: "**[Resolve](https://...)**".
        return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("**", "")
    return props.get("title", widget["type"])


def render_svg(bodies: dict[str, dict[str, Any]]) -> str:
    """The dashboards one below the other, each under a band naming it (its logical id)."""
    width, top, out = 24 * CELL_W, 0, []
    for logical_id, body in bodies.items():
        widgets = body["widgets"]
        out += [
            f'<rect x="0" y="{top}" width="{width}" height="{BAND_H}" fill="#6b7b8c"/>',
            f'<text x="10" y="{top + 20}" fill="#fff" font-weight="bold">'
            f"{escape(logical_id[:-8])}</text>",
        ]
        top += BAND_H
        for widget in widgets:
            x, y = widget["x"] * CELL_W, top + widget["y"] * CELL_H
            w, h = widget["width"] * CELL_W, widget["height"] * CELL_H
            kind = widget["type"]
            lines = len(widget.get("properties", {}).get("metrics", []))
            detail = f"{lines} metric line(s)" if kind == "metric" else kind
            out += [
                f'<rect x="{x + 2}" y="{y + 2}" width="{w - 4}" height="{h - 4}" rx="4" '
                f'fill="{COLORS.get(kind, "#fff")}" stroke="#6b7b8c"/>',
                f'<text x="{x + 10}" y="{y + min(22, h - 6)}" font-weight="bold">'
                f"{escape(_label(widget))}</text>",
            ]
            if widget["height"] > 1:  # a one-row heading has room for its title only
                out.append(f'<text x="{x + 10}" y="{y + 40}" fill="#555">{escape(detail)}</text>')
        top += max(w["y"] + w["height"] for w in widgets) * CELL_H
    header = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top}" '
        f'viewBox="0 0 {width} {top}" font-family="sans-serif" font-size="13">'
    )
    return "\n".join([header, *out, "</svg>"]) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: render_dashboard.py <template.json> <out.svg>\n")
        return 2
    template = json.loads(Path(argv[1]).read_text())
    Path(argv[2]).write_text(render_svg(bodies_from_template(template)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
