"""The demo commons' entities, checked against the default dictionary's YAML files as written."""
import hashlib
import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from jsonschema import Draft202012Validator
from pyimzml.ImzMLParser import ImzMLParser

from labcommons.demo import write_files
from labcommons.demo.entities import demo_commons
from labcommons.demo.images import FLAWS, MODES, SPECTRUM_TYPES

DICTIONARY_DIR = Path(__file__).resolve().parents[2] / "metadata" / "dictionary" / "default"
NODE_TYPES = {"program", "project", "case", "sample", "experiment", "measurement",
              "data_file", "parameter_set", "workflow_run"}
CATEGORIES = {"administrative", "clinical", "biospecimen", "experimental", "data_file", "analysis"}
SYSTEM_FIELDS = {"id", "type", "submitter_id", "project_id", "version",
                 "created_at", "updated_at", "created_by", "updated_by"}
PROPERTY_KEYWORDS = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                     "pattern", "format", "minLength", "maxLength", "items", "description", "unit", "title"}
TARGETS = {"case": 200, "sample": 400, "experiment": 30, "measurement": 600}


@pytest.fixture(scope="module")
def dictionary() -> dict[str, dict]:
    """Node type -> its YAML document, read straight from the default dictionary's files."""
    return {path.stem: yaml.safe_load(path.read_text()) for path in DICTIONARY_DIR.glob("*.yaml")}


@pytest.fixture(scope="module")
def commons():
    return demo_commons()


def _links(doc: dict) -> list[dict]:
    """Every link of a type, with the members of link groups flattened in."""
    return [member for entry in doc.get("links") or [] for member in entry.get("subgroup", [entry])]


def _groups(doc: dict) -> list[dict]:
    return [entry for entry in doc.get("links") or [] if "subgroup" in entry]


def _entities(commons) -> list[dict]:
    """Every entity the demo submits: programs, project nodes and each project's entities."""
    scoped = [e for entities in commons.projects.values() for e in entities]
    return commons.programs + commons.project_nodes + scoped


def _properties(entity: dict, doc: dict) -> dict:
    links = {link["name"] for link in _links(doc)}
    return {k: v for k, v in entity.items() if k not in links and k not in ("type", "submitter_id")}


def _refs(value) -> list[dict]:
    return value if isinstance(value, list) else [value]


def test_default_dictionary_is_well_formed(dictionary):
    assert set(dictionary) == NODE_TYPES
    for name, doc in dictionary.items():
        assert doc["id"] == name and doc["title"] and doc["description"]
        assert doc["category"] in CATEGORIES
        assert set(doc.get("required") or []) <= set(doc["properties"])
        assert not set(doc["properties"]) & SYSTEM_FIELDS, name
        for prop, schema in doc["properties"].items():
            assert set(schema) <= PROPERTY_KEYWORDS, (name, prop)
            assert schema["description"], (name, prop)
        for link in _links(doc):
            assert link["target_type"] in dictionary, (name, link["name"])


def test_counts_at_scale_one_are_near_the_targets(commons):
    assert len(commons.programs) == 2
    per_program = Counter(node["programs"]["submitter_id"] for node in commons.project_nodes)
    assert sorted(per_program.values()) == [2, 2]
    assert set(commons.projects) == {node["submitter_id"] for node in commons.project_nodes}
    counts = Counter(e["type"] for entities in commons.projects.values() for e in entities)
    for node_type, target in TARGETS.items():
        assert abs(counts[node_type] - target) <= 0.1 * target, node_type
    assert "data_file" not in counts


def test_every_measurement_gets_an_image_and_the_images_vary(commons):
    measurements = {(pid, e["submitter_id"]): e for pid, entities in commons.projects.items()
                    for e in entities if e["type"] == "measurement"}
    assert sorted((s.project_id, s.measurement) for s in commons.imaging) == sorted(measurements)
    images = [spec.image for spec in commons.imaging]
    assert {(i.mode, i.spectrum_type) for i in images} == {(m, t) for m in MODES for t in SPECTRUM_TYPES}
    assert {i.polarity for i in images} == {"positive", "negative"} and any(i.elements for i in images)
    assert len({(i.width, i.height) for i in images}) >= 4
    assert sum(i.width * i.height for i in images) <= 50_000  # kilobyte files: `make run` stays quick
    for spec in commons.imaging:
        measurement, image = measurements[spec.project_id, spec.measurement], spec.image
        assert (measurement["raster_width"], measurement["raster_height"]) == (image.width, image.height)
        assert (measurement["polarity"], measurement["pixel_size_um"]) == (image.polarity, image.pixel_size_um)
        assert (measurement["spectrum_type"], measurement["imzml_mode"]) == (image.spectrum_type, image.mode)


def test_each_project_has_one_image_of_each_flaw_and_qc_starts_on_each_kind(commons):
    for project_id in commons.projects:
        flaws = sorted(s.image.flaw for s in commons.imaging if s.project_id == project_id and s.image.flaw)
        assert flaws == sorted(FLAWS[1:])
    started = commons.qc_at_start
    assert 6 <= len(started) <= 10  # a few QC runs at start, not 600
    assert {s.image.flaw for s in started} == set(FLAWS)
    assert {(s.image.mode, s.image.spectrum_type) for s in started} == {(m, t) for m in MODES for t in SPECTRUM_TYPES}
    assert {s.image.polarity for s in started} == {"positive", "negative"}
    broken = commons.broken_pair
    assert broken.image.name == broken.values["submitter_id"] and broken.image.seed != broken.other.seed


def test_same_seed_gives_the_same_commons():
    assert demo_commons(seed=3, scale=0.2) == demo_commons(seed=3, scale=0.2)
    assert demo_commons(seed=3, scale=0.2) != demo_commons(seed=4, scale=0.2)


def test_small_scale_keeps_every_type_in_every_project():
    small = demo_commons(scale=0.05)
    for entities in small.projects.values():
        assert set(Counter(e["type"] for e in entities)) == set(TARGETS)
    assert len(small.imaging) == sum(e["type"] == "measurement" for es in small.projects.values() for e in es)


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_every_link_names_an_entity_of_its_type_in_the_same_project(dictionary, scale):
    commons = demo_commons(scale=scale)
    programs = {p["submitter_id"] for p in commons.programs}
    for node in commons.project_nodes:
        assert node["programs"]["submitter_id"] in programs
    for project_id, entities in commons.projects.items():
        known = {(e["type"], e["submitter_id"]) for e in entities}
        assert len(known) == len(entities), f"duplicate submitter_id in {project_id}"
        for entity in entities:
            for link in _links(dictionary[entity["type"]]):
                for ref in _refs(entity.get(link["name"], [])):
                    assert (link["target_type"], ref["submitter_id"]) in known, (project_id, entity, link)


def test_parents_are_listed_before_their_children(dictionary, commons):
    for entities in commons.projects.values():
        seen = set()
        for entity in entities:
            for link in _links(dictionary[entity["type"]]):
                for ref in _refs(entity.get(link["name"], [])):
                    assert ref["submitter_id"] in seen
            seen.add(entity["submitter_id"])


def test_required_links_and_link_groups_are_satisfied(dictionary, commons):
    for entity in _entities(commons):
        doc = dictionary[entity["type"]]
        for link in doc.get("links") or []:
            if "subgroup" not in link and link["required"]:
                assert link["name"] in entity, (entity["submitter_id"], link["name"])
        for group in _groups(doc):
            present = [m["name"] for m in group["subgroup"] if m["name"] in entity]
            assert present or not group.get("required"), (entity["submitter_id"], group)
            assert not group.get("exclusive") or len(present) <= 1


def test_required_properties_are_present(dictionary, commons):
    for entity in _entities(commons):
        missing = set(dictionary[entity["type"]].get("required") or []) - set(entity)
        assert not missing, (entity["submitter_id"], missing)


def test_enum_values_are_in_the_dictionary(dictionary, commons):
    for entity in _entities(commons):
        schemas = dictionary[entity["type"]]["properties"]
        for name, value in _properties(entity, dictionary[entity["type"]]).items():
            allowed = schemas[name].get("enum") or schemas[name].get("items", {}).get("enum")
            for item in value if isinstance(value, list) else [value]:
                assert allowed is None or item in allowed, (entity["submitter_id"], name, item)


def test_properties_validate_against_the_dictionary_schema(dictionary, commons):
    """Types, ranges, patterns and dates as JSON Schema sees them, and no unknown keys."""
    for entity in _entities(commons):
        doc = dictionary[entity["type"]]
        schema = {"type": "object", "properties": doc["properties"],
                  "required": doc.get("required") or [], "additionalProperties": False}
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [e.message for e in validator.iter_errors(_properties(entity, doc))]
        assert not errors, (entity["submitter_id"], errors)


def test_entities_are_plain_json(commons):
    for entity in _entities(commons):
        assert json.loads(json.dumps(entity)) == entity


def test_written_pairs_match_their_nodes_and_the_dictionary(tmp_path, dictionary):
    """At a small scale, every pair written as the demo writes it: its data_file nodes' checksums
    are its bytes, its measurement's header fields what pyimzML reads, all valid entities."""
    small = demo_commons(scale=0.05)
    files = write_files(small, tmp_path, lambda: None)
    measurements = {e["submitter_id"]: e for es in small.projects.values() for e in es if e["type"] == "measurement"}
    for spec in small.imaging:
        nodes = [f for f in files[spec.project_id] if f["measurements"]["submitter_id"] == spec.measurement]
        assert sorted(f["data_format"] for f in nodes) == ["ibd", "imzML"]
        for node in nodes:
            path = Path(urlparse(node["storage_url"]).path)
            assert path.parent == tmp_path / spec.project_id / spec.measurement
            data = path.read_bytes()
            assert (node["file_size"], node["md5sum"], node["sha256"]) == (
                len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
        measurement = measurements[spec.measurement]
        with ImzMLParser(str(tmp_path / spec.project_id / spec.measurement / f"{spec.measurement}.imzML")) as parser:
            assert (parser.polarity, parser.spectrum_mode) == (measurement["polarity"], measurement["spectrum_type"])
            assert parser.imzmldict["pixel size x"] == measurement["pixel_size_um"]
            grid = parser.imzmldict["max count of pixels x"], parser.imzmldict["max count of pixels y"]
            assert grid == (measurement["raster_width"], measurement["raster_height"])
    small.projects = {pid: es + files[pid] for pid, es in small.projects.items()}
    test_properties_validate_against_the_dictionary_schema(dictionary, small)
