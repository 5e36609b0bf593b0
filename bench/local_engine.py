"""Throughput of the local workflow engine on a 200-item withItems fan-out of trivial steps.

Each step is a real process (`true` by default, so the figure measures the engine: scheduling,
sandboxing with bubblewrap where it works, journaling; not the step's own work). Prints
`name: value` lines, the headline (`steps_per_s`) last.

    .venv/bin/python bench/local_engine.py                 # 200 items, pool = CPU count
    .venv/bin/python bench/local_engine.py --items 50 --no-isolate
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_templates.engines.local import LocalEngine  # noqa: E402
from workflow_templates.engines.sandbox import bwrap_path  # noqa: E402

TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: fan-out}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: each
        template: trivial
        withItems: %s
        arguments: {parameters: [{name: n, value: "{{item}}"}]}
  - name: trivial
    inputs: {parameters: [{name: n}]}
    container: {image: alpine, command: %s}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=os.cpu_count())
    parser.add_argument("--command", default='[sh, -c, "echo {{inputs.parameters.n}}"]')
    parser.add_argument("--no-isolate", action="store_true", help="do not use bubblewrap")
    args = parser.parse_args()
    isolated = not args.no_isolate and bwrap_path() is not None
    with tempfile.TemporaryDirectory(prefix="bench-local-engine-") as tmp:
        engine = LocalEngine(Path(tmp) / "storage", Path(tmp) / "runs",
                             max_parallel=args.parallel, isolate=isolated)
        started = time.perf_counter()
        handle = engine.start(TEMPLATE % (list(range(args.items)), args.command))
        phase = handle.wait()
        elapsed = time.perf_counter() - started
        steps = sum(1 for n in handle.status()["nodes"].values()
                    if n["type"] == "Pod" and n["phase"] == "Succeeded")
    print(f"python: {platform.python_version()}")
    print(f"cpu_count: {os.cpu_count()}")
    print(f"max_parallel: {args.parallel}")
    print(f"bubblewrap: {'yes' if isolated else 'no'}")
    print(f"items: {args.items}")
    print(f"phase: {phase}")
    print(f"elapsed_s: {elapsed:.2f}")
    print(f"steps_per_s: {steps / elapsed:.1f}")
    if phase != "Succeeded" or steps != args.items:
        sys.exit(1)


if __name__ == "__main__":
    main()
