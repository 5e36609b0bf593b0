"""A typed record reads only the properties it names and writes back only those, so a record of a
dictionary type must name every property its dictionary declares, or a save would drop one (as
the storage lifecycle's deletions were, before workflow_run's record named them)."""
from dataclasses import fields

from metadata.dictionary import Dictionary
from metadata.records import Run


def test_the_run_record_names_every_property_of_the_workflow_run_dictionary_type():
    declared = set(Dictionary.load().get("workflow_run").properties)
    assert declared <= {f.name for f in fields(Run)}
