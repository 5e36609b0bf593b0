"""A deployment's own dictionary (LABCOMMONS_DICTIONARY) replaces the default one in the service."""
import dataclasses
import shutil
import threading

import pytest

from metadata.client import MetadataClient
from metadata.dictionary import DEFAULT_DIRECTORY
from metadata.idl import metadata_thrift as T
from metadata.server import Server

SLIDE = """\
id: slide
title: Slide
description: A glass slide.
category: biospecimen
links: []
required: [stain]
properties:
  stain: {type: string, enum: [HE, PAS], description: The stain used.}
"""


@pytest.fixture
def slide_service(settings, tmp_path):
    directory = tmp_path / "dictionary"
    directory.mkdir()
    for name in ("program.yaml", "project.yaml"):
        shutil.copy(DEFAULT_DIRECTORY / name, directory / name)
    (directory / "slide.yaml").write_text(SLIDE)
    server = Server(dataclasses.replace(settings, dictionary=directory))
    server.write_admin_token()
    server.listen()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    with MetadataClient("127.0.0.1", server.bound_port(), server.settings.admin_token_path.read_text()) as client:
        client.submit("LAB", [{"type": "program", "submitter_id": "LAB"}])
        client.submit("slides", [{"type": "project", "submitter_id": "slides", "programs": {"submitter_id": "LAB"}}])
        yield client
    server.stop()
    thread.join(30)


def test_the_service_validates_against_the_configured_dictionary(slide_service):
    assert sorted(slide_service.dictionary()) == ["program", "project", "slide"]
    assert slide_service.submit("slides", [{"type": "slide", "submitter_id": "sl-1", "stain": "HE"}]).created == 1
    with pytest.raises(T.ValidationError) as caught:
        slide_service.submit("slides", [{"type": "case", "submitter_id": "c-1"},
                                        {"type": "slide", "submitter_id": "sl-2", "stain": "Giemsa"}])
    messages = {(i.index, i.field): i.message for i in caught.value.issues}
    assert "dictionary has: program, project, slide" in messages[(0, "type")]
    assert "choose one of: HE, PAS" in messages[(1, "stain")]


def test_without_a_flattening_config_exploration_has_no_documents(slide_service):
    assert slide_service.documents() == []
    with pytest.raises(T.ValidationError, match="kind: 'case' is not a document kind"):
        slide_service.facets("case", ["species"])
