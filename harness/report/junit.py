"""``junit.xml``: one test case per (cell, scenario); a failure message names step, hop, check, expected, actual."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.results.document import RunDoc
from harness.scenario import failures


def render(doc: RunDoc) -> str:
    suites = ET.Element("testsuites", name="harness")
    for cell in doc["cells"]:
        name = f"{cell['gateway']} x {cell['fasttrack']}"
        suite = ET.SubElement(suites, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for sc in cell["scenarios"]:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=name, name=sc["id"],
                                 time=f"{sc.get('duration_ms', 0) / 1000:.3f}")
            expected_fail = not cell["required"]
            if sc["outcome"] == "fail":
                fails = [failures.Failure.from_json(f) for f in sc["failures"]]
                msg = failures.one_line(fails[0]) if fails else "failed"
                marks = (["SECURITY"] if sc.get("security") else []) + (
                    [f"[{sc['finding']}]"] if sc.get("finding") else [])
                msg = " ".join([*marks, msg])
                if expected_fail:
                    ET.SubElement(case, "skipped", message=f"expected incompatibility (not required): {msg}")
                    counts["skipped"] += 1
                else:
                    el = ET.SubElement(case, "failure", message=msg,
                                       type="security" if sc.get("security") else "incompatible")
                    el.text = "\n".join(line for f in fails for line in failures.render(f))
                    counts["failures"] += 1
            elif sc["outcome"] == "error":
                ET.SubElement(case, "error", message=sc["error"] or "error", type="error")
                counts["errors"] += 1
            elif sc["outcome"] == "skip":
                ET.SubElement(case, "skipped", message=sc.get("reason") or "skipped")
                counts["skipped"] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write(doc: RunDoc, path: Path) -> Path:
    path.write_text(render(doc), encoding="utf-8")
    return path
