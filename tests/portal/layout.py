"""Helpers for reading rendered Dash layouts in tests."""


def graphs(node) -> dict:
    """Every dcc.Graph figure in a rendered layout, by the graph's id."""
    if isinstance(node, list):
        return {k: v for item in node for k, v in graphs(item).items()}
    if not isinstance(node, dict):
        return {}
    props = node.get("props", {})
    found = {props["id"]: props["figure"]} if node.get("type") == "Graph" and "id" in props else {}
    return found | graphs(props.get("children")) | graphs([v for k, v in node.items() if k != "props"])
