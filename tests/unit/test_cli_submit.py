"""The CLI's file batching (labcommons/cli_submit.py): batches, byte positions and checkpoints."""
from __future__ import annotations

import csv
import io
import json

from labcommons.cli_submit import Checkpoint, Position, batches


def entities_of(batch, fmt: str) -> list[dict]:
    if fmt == "json":
        return json.loads(batch.body)
    return list(csv.DictReader(io.StringIO(batch.body), delimiter="\t"))


def test_tsv_batches_keep_quoted_newlines_and_resume_at_any_batch(tmp_path):
    file = tmp_path / "cases.tsv"
    rows = [f'case\tc-{i}\t"line one\nline two {i}"' if i % 3 == 0 else f"case\tc-{i}\tplain" for i in range(10)]
    file.write_text("type\tsubmitter_id\tnote\n" + "\n".join(rows) + "\n", encoding="utf-8")
    every = list(batches(file, "tsv", 4, Position()))
    assert [b.count for b in every] == [4, 4, 2]
    assert [e["submitter_id"] for b in every for e in entities_of(b, "tsv")] == [f"c-{i}" for i in range(10)]
    assert entities_of(every[0], "tsv")[0]["note"] == "line one\nline two 0"
    resumed = list(batches(file, "tsv", 4, every[0].end))
    assert [b.body for b in resumed] == [b.body for b in every[1:]]
    assert every[1].start.records == 4 and every[-1].end.offset == file.stat().st_size


def test_json_batches_stream_an_array_with_any_text_and_resume(tmp_path):
    file = tmp_path / "cases.json"
    items = [{"type": "case", "submitter_id": f"c-{i}", "note": "ü, ] [ \" {" * i} for i in range(7)]
    file.write_text(json.dumps(items, indent=1, ensure_ascii=False), encoding="utf-8")
    every = list(batches(file, "json", 3, Position()))
    assert [e for b in every for e in entities_of(b, "json")] == items
    resumed = list(batches(file, "json", 3, every[0].end))
    assert [entities_of(b, "json") for b in resumed] == [entities_of(b, "json") for b in every[1:]]
    assert [] == list(batches(file, "json", 3, every[-1].end))


def test_a_checkpoint_holds_only_while_the_file_begins_the_same(tmp_path):
    file = tmp_path / "cases.tsv"
    file.write_text("type\tsubmitter_id\ncase\tc-1\ncase\tc-2\n")
    checkpoint = Checkpoint(file, "proj", "tsv")
    first = next(batches(file, "tsv", 1, Position()))
    assert checkpoint.save(first.end) and checkpoint.load() == first.end
    assert Checkpoint(file, "other-proj", "tsv").load() == Position()
    file.write_text(file.read_text().replace("c-2", "c-3"))  # a later row fixed: still good
    assert checkpoint.load() == first.end
    file.write_text(file.read_text().replace("c-1", "c-0"))  # the written part changed: start over
    assert checkpoint.load() == Position()
