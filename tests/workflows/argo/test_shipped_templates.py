"""Every WorkflowTemplate the project ships installs through the engine within the contract."""
from __future__ import annotations

from pathlib import Path

import yaml

import workflow_templates

ROOT = Path(workflow_templates.__file__).parent


def shipped_templates() -> list[dict]:
    docs = []
    for path in sorted(ROOT.rglob("*.yaml")) + sorted(ROOT.rglob("*.yml")):
        docs += [d for d in yaml.safe_load_all(path.read_text())
                 if isinstance(d, dict) and d.get("kind") == "WorkflowTemplate"]
    return docs


def test_shipped_templates_install_within_the_contract(fake_argo, engine,
                                                        template_doc):
    """The fixture's teardown fails the test if any template breaks the swagger's schema."""
    docs = shipped_templates() + [template_doc]
    installed = engine.install_templates(docs)
    assert set(installed.values()) == {"created"}
    assert sorted(fake_argo.templates) == sorted(d["metadata"]["name"] for d in docs)
