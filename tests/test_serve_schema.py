"""Schema-driven fuzzing of the HTTP API (schemathesis against the app's own OpenAPI document).

Every generated request, conforming to the schema or not, must get a JSON answer that is not a server error;
error answers carry ``detail``, successful ones match the documented response model. In-process through
ASGI: no port, no network.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_recommend import planted_run

from lightgode.serving.http import ServeConfig, create_app
from lightgode.serving.recommender import Recommender

OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/users/{user_id}/recommendations"),
    ("POST", "/recommendations"),
    ("GET", "/items/{item_id}/similar"),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    rec = Recommender.load(planted_run(tmp_path_factory.mktemp("runs") / "planted"))
    app = create_app(rec, ServeConfig(max_k=30, max_body_bytes=2048, max_history=50))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_schema_lists_every_operation(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert set(OPERATIONS) <= found


@pytest.mark.parametrize(
    "method,path,mode",
    [
        (m, p, mode)
        for m, p in OPERATIONS
        for mode in schemathesis.GenerationMode
        if not (p == "/health" and mode == schemathesis.GenerationMode.NEGATIVE)
    ],
)  # /health takes no input to break
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_operation_answers_json_without_server_errors(api_schema, method, path, mode, data):
    """Positive cases follow the schema (mostly unknown ids: 404); negative ones break it (422, 413)."""
    case = data.draw(api_schema[path][method].as_strategy(generation_mode=mode))
    response = case.call()
    assert response.status_code < 500, (method, case.formatted_path, response.text)
    assert response.headers["content-type"][0].startswith("application/json")  # schemathesis: header lists
    if response.status_code >= 400:
        assert "detail" in response.json()
    elif mode == schemathesis.GenerationMode.POSITIVE:
        case.validate_response(response)
