"""The fake Argo Server holds requests and its own answers to the published contract."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.workflows.argo.contract import ContractError

SUBMIT = "/api/v1/workflows/argo/submit"


def call(fake, method, path, body=None, token=None):
    """(HTTP status, JSON answer) of one raw request to the fake."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fake.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token or fake.token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def fake(fake_argo):
    """The fake, its violations forgiven at the end: these tests break the contract on purpose."""
    yield fake_argo
    fake_argo.violations.clear()


@pytest.mark.parametrize("method, path, status, says", [
    ("GET", "/api/v1/nowhere", 404, "no operation at path"),
    ("PATCH", "/api/v1/workflows/argo/wf-1", 405, "PATCH is not an operation"),
    ("GET", "/api/v1/workflows/argo?listOptions.labelSelectr=a%3Db", 400,
     "unknown query parameter listOptions.labelSelectr"),
    ("GET", "/api/v1/workflow-templates/argo?listOptions.limit=ten", 400, "is not an integer"),
    ("GET", "/api/v1/workflows/argo/wf/log?logOptions.follow=yes", 400, "is not a boolean"),
])
def test_requests_outside_the_contract_are_refused(fake, method, path, status, says):
    answer_status, answer = call(fake, method, path)
    assert answer_status == status and says in answer["message"]
    assert len(fake.violations) == 1 and says in fake.violations[0]


@pytest.mark.parametrize("body, says", [
    ({"namespace": "argo", "submitOption": {}}, "'submitOption' was unexpected"),
    ({"namespace": "argo", "submitOptions": {"labels": {"run": "1"}}},
     "submitOptions/labels: {'run': '1'} is not of type 'string'"),
    ({"namespace": "argo", "submitOptions": {"parameters": "a=b"}}, "is not of type 'array'"),
])
def test_bodies_outside_the_contract_are_refused_with_the_schema_error(fake, body, says):
    status, answer = call(fake, "POST", SUBMIT, body)
    assert status == 400 and says in answer["message"]
    assert fake.requests == []


def test_a_template_with_a_misspelled_field_is_refused(fake, template_doc):
    template_doc["spec"]["templates"][1]["container"]["comand"] = ["python"]
    status, answer = call(fake, "POST", "/api/v1/workflow-templates/argo",
                          {"namespace": "argo", "template": template_doc})
    assert status == 400
    assert "spec/templates/1/container" in answer["message"] and "'comand'" in answer["message"]


def test_numbers_the_server_accepts_as_strings_are_accepted(fake, template_doc):
    template_doc["spec"]["templates"][1]["container"]["resources"] = {"limits": {"cpu": 1}}
    status, _ = call(fake, "POST", "/api/v1/workflow-templates/argo",
                     {"namespace": "argo", "template": template_doc})
    assert status == 200 and fake.violations == []


def test_a_request_without_a_valid_token_is_unauthorized(fake):
    status, answer = call(fake, "GET", "/api/v1/workflow-templates/argo", token="nope")
    assert status == 401 and answer["code"] == 16 and fake.violations == []


def test_the_fakes_own_answers_are_checked_too(fake, installed, engine):
    name = engine.submit("tiny-qc", {"dataset": "d"}, {})
    fake.workflows[name]["status"]["phase"] = 7  # a corrupt answer the SDK must never see
    status, answer = call(fake, "GET", f"/api/v1/workflows/argo/{name}")
    assert status == 500 and "status/phase: 7 is not of type 'string'" in answer["message"]
    assert fake.violations and fake.violations[0].startswith("fake answer:")


def test_the_contract_prefers_literal_segments(argo_contract):
    assert argo_contract.operation("POST", SUBMIT).operation_id == "WorkflowService_SubmitWorkflow"
    assert argo_contract.operation("GET", "/api/v1/workflows/argo/submit").operation_id == \
        "WorkflowService_GetWorkflow"
    with pytest.raises(ContractError):
        argo_contract.operation("PUT", SUBMIT)
