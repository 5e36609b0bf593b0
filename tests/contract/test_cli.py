"""The CLI talks to the running service over Thrift and reports errors with a non-zero exit."""
import json
import re
from collections import Counter

import pytest

from tests.conftest import PROGRAM

SAMPLES_TSV = ("type\tsubmitter_id\torgan\tpreparation\tcases.submitter_id\n"
               "sample\ts-1\tliver\tFFPE\tc-1\n")


@pytest.fixture
def files(tmp_path):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"type": "case", "submitter_id": "c-1", "species": "human"}]))
    samples = tmp_path / "samples.tsv"
    samples.write_text(SAMPLES_TSV)
    return cases, samples


def test_submit_then_get_ls_and_export(cli, project, files, tmp_path):
    cases, samples = files
    assert "1 were created" in cli("submit", str(cases), "--project", project).output
    assert "1 were created" in cli("submit", str(samples), "-p", project).output
    node = json.loads(cli("get", "s-1", "--project", project).output)
    assert node["properties"]["organ"] == "liver"
    assert json.loads(cli("get", node["id"]).output)["submitter_id"] == "s-1"
    assert "1 of 1 sample" in cli("ls", "sample", "-p", project).output
    exported = cli("export", "sample", "-p", project).output
    assert exported.splitlines()[1].split("\t")[:3] == ["sample", node["id"], "s-1"]
    out = tmp_path / "cases-export.json"
    cli("export", "case", "--format", "json", "-o", str(out))
    assert json.loads(out.read_text())[0]["submitter_id"] == "c-1"


def test_an_exported_tsv_submits_back_unchanged(cli, project, files, tmp_path):
    cases, samples = files
    cli("submit", str(cases), "-p", project)
    cli("submit", str(samples), "-p", project)
    exported = tmp_path / "again.tsv"
    cli("export", "sample", "-p", project, "-o", str(exported))
    assert "1 unchanged" in cli("submit", str(exported), "-p", project).output


def test_dry_run_writes_nothing(cli, project, files):
    result = cli("submit", str(files[0]), "-p", project, "--dry-run")
    assert "1 would be created" in result.output and "nothing written" in result.output
    assert cli("get", "c-1", "-p", project).exit_code == 1


def test_a_refused_batch_prints_each_problem_and_exits_1(cli, project, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("type\tsubmitter_id\tspecies\tage_years\ncase\tc-1\tunicorn\tforty\n")
    result = cli("submit", str(bad), "-p", project)
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    assert "row 2" in result.output and "species" in result.output and "age_years" in result.output


def test_token_create_prints_a_working_token(cli, server, project):
    result = cli("token", "create", "--user", "tina", "--role", "technician", "--grant", f"{project}:write")
    token = result.stdout.strip().splitlines()[0]
    who = json.loads(cli("--token", token, "whoami").stdout)
    assert who["user"] == "tina" and who["grants"] == {project: "write"}


def test_a_token_without_rights_is_refused_with_exit_1(cli, server, project):
    token, _ = server.tokens.mint("olga", ["analyst"], {})
    result = cli("--token", token, "ls", "case", "-p", project)
    assert result.exit_code == 1 and "no read access" in result.output


def test_an_unreachable_service_is_explained(cli, monkeypatch):
    monkeypatch.setenv("LABCOMMONS_PORT", "1")
    result = cli("status")
    assert result.exit_code == 1 and "cannot reach the metadata service" in result.output


def test_status_shows_counts(cli, project):
    result = cli("status")
    assert "ok" in result.output and "project" in result.output


def test_demo_creates_a_small_commons_with_real_files_and_is_repeatable(cli, server):
    first = cli("demo", "--scale", "0.05")
    assert first.exit_code == 0 and "0 unchanged" in first.output
    storage = server.settings.storage_root
    suffixes = Counter(p.suffix for p in storage.rglob("*") if p.is_file())
    assert set(suffixes) == {".ibd", ".imzML"} and suffixes[".ibd"] == suffixes[".imzML"] >= 30  # a pair per measurement
    again = cli("demo", "--scale", "0.05")
    assert "0 nodes created, 0 updated" in again.output


def test_reindex_rebuilds_the_documents(cli, project, files):
    cli("submit", str(files[0]), "-p", project)
    result = cli("reindex")
    assert result.exit_code == 0 and "1 case documents" in result.output


def test_accounts_and_the_audit_log_from_the_cli(cli, server, project):
    added = cli("user", "add", "tina", "--role", "technician", "--password-stdin", input="a long password\n")
    assert added.exit_code == 0 and "account tina: roles technician" in added.output
    assert "write" in cli("user", "grant", "tina", project, "--access", "write").output
    assert "tina" in cli("user", "list").output
    assert "no grants" in cli("user", "revoke", "tina", project).output
    log = cli("audit", "--action", "set_grant")
    assert log.exit_code == 0 and log.output.count("set_grant") == 2


def test_the_tier_access_limit_from_the_cli(cli):
    assert "off" in cli("tier-access").output
    assert "tier-access limit: 25" in cli("tier-access", "25").output
    refused = cli("tier-access", "--", "-3")
    assert refused.exit_code == 1 and "limit: -3 is out of range" in refused.output
    shown = cli("tier-access", "--granularity", "5", "--fields", "species,sex").output
    assert "tier-access limit: 25\ngranularity: 5\ntier-visible: species, sex\n" in shown
    refused = cli("tier-access", "--fields", "submitter_id")
    assert refused.exit_code == 1 and "submitter_id names single records" in refused.output
    assert "tier-visible: species, sex\n" in cli("tier-access", "30").output
    assert "diagnosis" in cli("tier-access", "--fields", "default").output


UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27,}\b")


@pytest.fixture
def two_projects(admin, project, files):
    """`project` and a second one, each with a case c-1; only `project` has the sample s-1."""
    admin.submit("other-proj", [{"type": "project", "submitter_id": "other-proj", "programs": {"submitter_id": PROGRAM}}])
    for code, path in ((project, files[0]), ("other-proj", files[0]), (project, files[1])):
        admin.submit(code, body=path.read_text(), fmt="tsv" if path.suffix == ".tsv" else "json")
    return project, "other-proj"


def test_at_80_columns_every_node_id_printed_is_whole_and_usable(cli, two_projects, monkeypatch, admin):
    monkeypatch.setenv("COLUMNS", "80")
    listed = cli("ls", "case")
    assert listed.exit_code == 0 and max(map(len, listed.output.splitlines())) <= 80
    printed = UUID.findall(listed.output)
    assert sorted(printed) == sorted(n["id"] for n in admin.nodes("case"))
    for node_id in printed:
        assert json.loads(cli("get", node_id).output)["id"] == node_id
        assert json.loads(cli("get", node_id[:13]).output)["id"] == node_id  # a short id, as git's


def test_a_node_id_prefix_resolves_when_one_node_has_it_and_lists_the_candidates_otherwise(cli, server, two_projects,
                                                                                          admin):
    project, other = two_projects
    twins = ["abcd1234-0000-4000-8000-00000000000" + str(i) for i in (1, 2)]
    for id_, code in zip(twins, two_projects):
        admin.submit(code, [{"type": "case", "submitter_id": "twin", "id": id_, "species": "human"}])
    assert json.loads(cli("get", "abcd1234-0000-4000-8000-000000000002").output)["project_id"] == other
    assert json.loads(cli("get", "abcd1234-0000-4000-8000-0000000000", "-p", project).output)["id"] == twins[0]
    ambiguous = cli("get", "abcd")
    assert ambiguous.exit_code == 1 and "'abcd' names 2 nodes; give more of the id" in ambiguous.output
    assert all(f"{id_}  {code}  case  twin" in ambiguous.output for id_, code in zip(twins, two_projects))
    reader, _ = server.tokens.mint("olga", ["analyst"], {project: "read"})  # the other twin is no candidate
    assert json.loads(cli("--token", reader, "get", "abcd").output)["id"] == twins[0]
    deleted = cli("delete", "abcd1234-0000-4000-8000-0000000000", "-p", other)
    assert deleted.exit_code == 0 and [n["submitter_id"] for n in admin.nodes("case", other)] == ["c-1"]
    assert cli("get", "abc").exit_code == 1  # too short to be a short id: a submitter id, which no node has


def test_a_submitter_id_resolves_in_the_one_project_that_has_it_or_lists_the_candidates(cli, two_projects, admin):
    project, other = two_projects
    assert json.loads(cli("get", "s-1").output)["project_id"] == project  # no -p: only one project has it
    assert json.loads(cli("get", "c-1", "-p", other).output)["project_id"] == other
    ambiguous = cli("get", "c-1")
    assert ambiguous.exit_code == 1 and "'c-1' names 2 nodes; give the project with -p/--project" in ambiguous.output
    assert all(admin.find(p, "c-1")["id"] in ambiguous.output for p in two_projects)
    missing = cli("get", "nope")
    assert missing.exit_code == 1 and "no node 'nope' that you can read" in missing.output


def test_listings_print_json_and_tsv_that_parse(cli, two_projects, admin):
    rows = json.loads(cli("ls", "case", "-o", "json").output)
    assert sorted(r["id"] for r in rows) == sorted(n["id"] for n in admin.nodes("case"))
    assert {r["submitter_id"] for r in rows} == {"c-1"} and "updated_at" in rows[0]
    tsv = [line.split("\t") for line in cli("ls", "case", "-o", "tsv").output.splitlines()]
    assert tsv[0][:3] == ["id", "submitter_id", "project"] and len(tsv) == 3
    assert "updated_at" in cli("ls", "case", "-o", "wide").output
    assert json.loads(cli("user", "list", "-o", "json").output) == []
    assert json.loads(cli("audit", "-o", "json", "--limit", "1").output)[0]["action"]


def test_export_to_a_file_says_what_it_wrote(cli, two_projects, tmp_path):
    out = tmp_path / "samples.tsv"
    result = cli("export", "sample", "-o", str(out))
    assert result.exit_code == 0 and f"wrote 1 sample node(s) as TSV to {out}" in result.output
    assert "wrote" not in cli("export", "sample").stdout  # to stdout: only the data


def test_shell_completion_comes_from_click():
    from click.testing import CliRunner

    from labcommons.cli import main
    runner = CliRunner()
    script = runner.invoke(main, [], prog_name="labcommons", env={"_LABCOMMONS_COMPLETE": "bash_source"})
    assert "_labcommons_completion()" in script.output
    words = runner.invoke(main, [], prog_name="labcommons", env={
        "_LABCOMMONS_COMPLETE": "bash_complete", "COMP_WORDS": "labcommons run sh", "COMP_CWORD": "2"})
    assert words.output.splitlines() == ["plain,show"]


def test_a_submitter_id_resolves_only_among_projects_the_caller_can_read(cli, server, two_projects, admin):
    project, other = two_projects
    token, _ = server.tokens.mint("olga", ["analyst"], {project: "read"})
    got = cli("--token", token, "get", "c-1")  # other-proj's c-1 is neither a candidate nor named
    assert got.exit_code == 0 and json.loads(got.output)["id"] == admin.find(project, "c-1")["id"]
    refused = cli("--token", token, "get", "c-1", "-p", other)
    assert refused.exit_code == 1 and admin.find(other, "c-1")["id"] not in refused.output


def test_a_refused_batch_of_a_large_file_is_located_in_the_file_and_a_rerun_continues(cli, project, tmp_path):
    file = tmp_path / "cases.tsv"
    rows = "".join(f"case\tc-{i}\t{'unicorn' if i == 4 else 'mouse'}\n" for i in range(6))
    file.write_text("type\tsubmitter_id\tspecies\n" + rows)
    refused = cli("submit", str(file), "-p", project, "--batch-size", "2", "--no-progress")
    assert refused.exit_code == 1 and "the 4 entities before it were written" in refused.output
    assert "row 6" in refused.output  # c-4: the file's row (the header is row 1), not the batch's
    file.write_text(file.read_text().replace("unicorn", "mouse"))
    rerun = cli("submit", str(file), "-p", project, "--batch-size", "2", "--no-progress")
    assert "continued after the 4 entities" in rerun.output and "2 were created" in rerun.output


def test_a_json_file_larger_than_a_batch_is_sent_in_batches(cli, project, tmp_path):
    file = tmp_path / "cases.json"
    file.write_text(json.dumps([{"type": "case", "submitter_id": f"c-{i}", "species": "mouse"} for i in range(5)]))
    result = cli("submit", str(file), "-p", project, "--batch-size", "2", "--no-progress")
    assert "5 entities: 5 were created" in result.output and not (tmp_path / ".cases.json.labcommons-submit").exists()
