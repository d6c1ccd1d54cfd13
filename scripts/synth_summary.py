"""Print what ``make synth`` produced: stacks, resources per stack, nag acknowledgments.

Reads only the cloud assembly on disk, so it works without AWS credentials.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def summarize(outdir: Path) -> list[str]:
    lines = []
    total_acks = 0
    for manifest_path in sorted(outdir.glob("assembly-*/manifest.json")):
        assembly = manifest_path.parent
        manifest = json.loads(manifest_path.read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            props = artifact["properties"]
            template = json.loads((assembly / props["templateFile"]).read_text())
            resources = template.get("Resources", {})
            kinds = Counter(r["Type"].split("::")[1] for r in resources.values())
            acks: Counter[str] = Counter()
            meta_file = assembly / f"{Path(props['templateFile']).stem.removesuffix('.template')}"
            for meta in assembly.glob(f"{meta_file.name}.metadata.json"):
                for entries in json.loads(meta.read_text()).values():
                    for entry in entries:
                        if entry["type"] == "aws:cdk:acknowledged-rules":
                            for rule in entry["data"]:
                                acks[rule.removeprefix("Annotation::").split("[")[0]] += 1
            total_acks += sum(acks.values())
            top = ", ".join(f"{k} {v}" for k, v in kinds.most_common(6))
            lines.append(
                f"{artifact.get('displayName', props.get('stackName')):<22} "
                f"{len(resources):>4} resources ({top}); acknowledged: "
                f"{sum(acks.values())} {dict(acks) if acks else ''}"
            )
    report = json.loads((outdir / "validation-report.json").read_text())
    findings = sum(len(p.get("violations", [])) for p in report.get("pluginReports", []))
    lines.append(f"cdk-nag: {findings} unacknowledged findings, {total_acks} acknowledged")
    return lines


if __name__ == "__main__":
    lines = summarize(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out"))
    print("\n".join(lines))
    # The CLI does not always fail on validation findings; make synth must.
    sys.exit(0 if lines[-1].startswith("cdk-nag: 0 unacknowledged") else 1)
