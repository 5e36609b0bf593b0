"""TLS: verified by default, against a given CA bundle, or (when told) not at all."""
from __future__ import annotations

import ssl
import subprocess

import pytest
import urllib3

from tests.workflows.argo.fake_server import FakeArgoServer
from workflow_templates.engines.argo import ArgoEngine, ArgoEngineError


@pytest.fixture
def https_argo(tmp_path, argo_contract):
    """The fake over HTTPS with a self-signed certificate for 127.0.0.1; yields (fake, cert)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake = FakeArgoServer(contract=argo_contract).start(tls=context)
    yield fake, str(cert)
    fake.stop()
    assert fake.violations == []


def test_an_unknown_certificate_is_refused_by_default(https_argo):
    fake, _ = https_argo
    with pytest.raises(ArgoEngineError, match="TLS verification failed") as caught:
        ArgoEngine(fake.url, fake.token, "argo").health()
    assert caught.value.reason == "tls" and fake.url in str(caught.value)
    assert fake.requests == []


def test_a_ca_bundle_or_no_verification_when_told(https_argo):
    fake, cert = https_argo
    assert ArgoEngine(fake.url, fake.token, "argo", verify_tls=cert).health()["version"]
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):  # said on every request
        assert ArgoEngine(fake.url, fake.token, "argo", verify_tls=False).health()["version"]
