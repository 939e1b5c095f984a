"""Fuzz the API from its own OpenAPI schema (schemathesis): whatever arrives, never a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error

from vitascope.api.app import create_app
from vitascope.service import Vitascope
from vitascope.settings import Settings

_vs = Vitascope(Settings(home=Path(tempfile.mkdtemp(prefix="vs-fuzz-")), test_models=True, default_model="vitascope-world-tiny"))
_, KEY = _vs.create_key(name="fuzzer")
# the engine stays off: this tests what the API accepts and refuses, not generation
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_vs, start_engine=False))


@schema.parametrize()
@hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])
