"""HTTP API: each endpoint and status code, a hypothesis fuzz of every endpoint, and a real uvicorn process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_recommend import planted_run

from lightgode.serving.http import ServeConfig, create_app
from lightgode.serving.recommender import Recommender


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return planted_run(tmp_path_factory.mktemp("runs") / "planted")


@pytest.fixture(scope="module")
def rec(run_dir):
    return Recommender.load(run_dir)


@pytest.fixture(scope="module")
def client(rec):
    app = create_app(rec, ServeConfig(max_k=30, max_body_bytes=2048, max_history=50))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_and_openapi(client, rec):
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "users": rec.n_users, "items": rec.n_items}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/users/{user_id}/recommendations", "/recommendations", "/items/{item_id}/similar"} <= set(paths)


def test_user_recommendations_match_the_library(client, rec):
    u = str(rec.vocab.user_ids[5])
    r = client.get(f"/users/{u}/recommendations", params={"k": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == u and [x["item"] for x in body["items"]] == [x.item for x in rec.recommend(u, 7)]
    assert len(client.get(f"/users/{u}/recommendations").json()["items"]) == 20  # default k
    assert len(client.get(f"/users/{u}/recommendations", params={"k": 10**9}).json()["items"]) == 30  # capped


def test_new_user_and_similar_items(client, rec):
    r = client.post("/recommendations", json={"items": ["i1", "i2"], "k": 5})
    assert r.status_code == 200
    assert [x["item"] for x in r.json()["items"]] == [x.item for x in rec.recommend_for_history(["i1", "i2"], 5)]
    r = client.get("/items/i4/similar", params={"k": 3})
    assert r.status_code == 200
    assert [x["item"] for x in r.json()["items"]] == [x.item for x in rec.similar_items("i4", 3)]


@pytest.mark.parametrize(
    "method,url,kwargs,status",
    [
        ("get", "/users/nobody/recommendations", {}, 404),
        ("get", "/items/nothing/similar", {}, 404),
        ("post", "/recommendations", {"json": {"items": ["i1", "nothing"]}}, 404),
        ("get", "/users/u1/recommendations", {"params": {"k": 0}}, 422),
        ("get", "/users/u1/recommendations", {"params": {"k": "ten"}}, 422),
        ("get", "/items/i1/similar", {"params": {"k": -3}}, 422),
        ("post", "/recommendations", {"json": {"items": []}}, 422),
        ("post", "/recommendations", {"json": {"items": "i1"}}, 422),
        ("post", "/recommendations", {"json": {"items": ["i1"], "k": 0}}, 422),
        ("post", "/recommendations", {"json": {"items": ["i1"], "k": 2.5}}, 422),
        ("post", "/recommendations", {"json": {"items": [1.5]}}, 422),
        ("post", "/recommendations", {"json": {"items": ["i1"], "extra": 1}}, 422),
        ("post", "/recommendations", {"json": {"items": ["i1"] * 51}}, 422),
        ("post", "/recommendations", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", "/recommendations", {"json": {"items": ["i1"] * 1000}}, 413),
        ("post", "/recommendations", {"content": b"x" * 5000, "headers": {"content-type": "application/json"}}, 413),
    ],
)
def test_bad_requests_get_their_status_and_a_json_error(client, method, url, kwargs, status):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status, r.text
    assert "detail" in r.json()


@pytest.mark.parametrize(
    "body",
    [
        '{"items": [], "k": 0, "exclude_seen": Infinity}',
        '{"items": ["i1"], "k": NaN}',
        "[Infinity]",
        '{"items": [1e400]}',
    ],
)
def test_non_finite_numbers_get_422_not_500(client, body):
    r = client.post("/recommendations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_chunked_oversized_body_gets_413(client):
    def chunks():
        for _ in range(10):
            yield b"[" * 500

    r = client.post("/recommendations", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "detail" in r.json()


ids = st.one_of(st.text(max_size=30), st.sampled_from(["u1", "u2", "i1", "i3", "..", "%2F", " "]))
k_values = st.one_of(st.integers(-5, 10**12), st.text(max_size=8), st.floats(allow_nan=True))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "items": st.lists(
                st.one_of(st.text(max_size=6), st.integers(), st.sampled_from(["i1", "i2", "i9"])), max_size=8
            )
        },
        optional={
            "k": st.one_of(st.integers(-3, 10**6), st.floats(), st.text(max_size=3)),
            "exclude_seen": json_values,
        },
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["user", "similar", "post"]), id_=ids, k=k_values, body=bodies)
def test_fuzz_endpoints_never_fail_with_500(client, kind, id_, k, body):
    if kind == "user":
        r = client.get(f"/users/{quote(id_, safe='')}/recommendations", params={"k": str(k)})
    elif kind == "similar":
        r = client.get(f"/items/{quote(id_, safe='')}/similar", params={"k": str(k)})
    else:
        # encoded here, not by the client: Python's json writes NaN/Infinity, which the server's parser accepts
        r = client.post("/recommendations", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (200, 404, 405, 413, 422), (r.status_code, r.text)
    payload = r.json()
    if r.status_code == 200:
        assert len(payload["items"]) <= 30
        assert [x["rank"] for x in payload["items"]] == list(range(1, len(payload["items"]) + 1))
    else:
        assert "detail" in payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_process_answers_each_endpoint(run_dir, rec):
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightgode", "serve", str(run_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 40
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "server did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=5) as c:
            u = str(rec.vocab.user_ids[0])
            assert [x["item"] for x in c.get(f"/users/{u}/recommendations?k=4").json()["items"]] == [
                x.item for x in rec.recommend(u, 4)
            ]
            assert c.post("/recommendations", json={"items": ["i1"], "k": 3}).status_code == 200
            assert c.get("/items/i1/similar?k=3").status_code == 200
            assert c.get("/users/nobody/recommendations").status_code == 404
            assert c.get(f"/users/{u}/recommendations?k=0").status_code == 422
            assert (
                c.post(
                    "/recommendations", content=b"[" * 70000, headers={"content-type": "application/json"}
                ).status_code
                == 413
            )
            assert "paths" in c.get("/openapi.json").json()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
