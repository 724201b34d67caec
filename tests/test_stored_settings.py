"""Settings are checked the same way wherever they come from: flags, --config files and a run's stored
config.json / metrics.json / train.json. A wrong type or value is a one-line error with exit 2, never a traceback
and never silently used. Also the server's limits that protect it from slow clients, and its offline docs page."""

import asyncio
import gzip
import json
import shutil
import socket
import threading
import time
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightgode.cli import main
from lightgode.core.config import MODEL_NAMES, BaselineConfig, DataConfig, RunConfig, TrainConfig
from lightgode.core.evaluate import EvalConfig
from lightgode.core.ode import ODEConfig
from lightgode.errors import ConfigError, RunDirError
from lightgode.runs.store import load_run

SECTIONS = {"data": DataConfig, "train": TrainConfig, "ode": ODEConfig, "eval": EvalConfig, "baseline": BaselineConfig}


def rewrite(run: Path, name: str, text: str) -> None:
    """Replace one file of a complete run and update the completion marker's size for it, as an editor or a
    script that knows the format would: the corruption is in the content, not a truncated file."""
    (run / name).write_text(text)
    marker = json.loads((run / "COMPLETE").read_text())
    marker["files"][name] = (run / name).stat().st_size
    (run / "COMPLETE").write_text(json.dumps(marker))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: 2 epochs on the first 800 users of the bundled Amazon-Beauty."""
    bundled = resources.files("lightgode") / "bundled" / "amazon-beauty.txt.gz"
    lines = gzip.decompress(bundled.read_bytes()).decode().splitlines()[:800]
    base = tmp_path_factory.mktemp("stored")
    (base / "slice.txt").write_text("\n".join(lines) + "\n")
    out = base / "run"
    assert (
        main(
            ["train", "--data", str(base / "slice.txt"), "--epochs", "2", "--kcore", "0", "--quiet", "--out", str(out)]
        )
        == 0
    )
    return out


def corrupted(run_dir: Path, tmp_path: Path, name: str, text: str) -> Path:
    bad = tmp_path / "bad-run"
    shutil.copytree(run_dir, bad)
    rewrite(bad, name, text)
    return bad


def config_with(run_dir: Path, edit) -> str:
    cfg = json.loads((run_dir / "config.json").read_text())
    edit(cfg)
    return json.dumps(cfg)


def _set(path: str, value):
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


CORRUPTIONS = {
    "t-is-text": ("config.json", lambda r: config_with(r, _set("ode.t", "abc")), "ode.t"),
    "ode-is-a-list": ("config.json", lambda r: config_with(r, _set("ode", [1, 2])), "ode"),
    "unknown-model": ("config.json", lambda r: config_with(r, _set("model", "evil")), "evil"),
    "ks-is-a-string": ("config.json", lambda r: config_with(r, _set("eval.ks", "20")), "eval.ks"),
    "dim-is-text": ("config.json", lambda r: config_with(r, _set("train.dim", "64")), "train.dim"),
    "negative-seed": ("config.json", lambda r: config_with(r, _set("seed", -1)), "seed"),
    "config-is-a-list": ("config.json", lambda r: "[1, 2]", "config.json"),
    "metrics-is-a-list": ("metrics.json", lambda r: "[1]", "metrics.json"),
    "metrics-split-is-a-number": ("metrics.json", lambda r: '{"valid": 3}', "valid"),
    "metric-is-text": ("metrics.json", lambda r: '{"test": {"ndcg@20": "high"}}', "ndcg@20"),
    "metric-key-without-k": ("metrics.json", lambda r: '{"test": {"ndcg": 0.1}}', "ndcg"),
    "train-json-is-a-list": ("train.json", lambda r: "[]", "train.json"),
}


def new_interactions(folder: Path) -> Path:
    path = folder / "new.csv"
    path.write_text("user,item\nnew-user,1\n")
    return path


COMMANDS = {
    "info": lambda run, tmp: ["info", str(run)],
    "info-json": lambda run, tmp: ["info", str(run), "--json"],
    "recommend": lambda run, tmp: ["recommend", str(run), "--user", "1", "-k", "3"],
    "evaluate": lambda run, tmp: ["evaluate", str(run)],
    "export": lambda run, tmp: ["export", str(run), "--out", str(tmp / "exported")],
    "update": lambda run, tmp: [
        "update",
        str(run),
        "--interactions",
        str(new_interactions(tmp)),
        "--out",
        str(tmp / "updated"),
    ],
    "serve": lambda run, tmp: ["serve", str(run), "--port", "0"],
    "tune": lambda run, tmp: ["tune", str(run), "--dry-run"],
}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("lightgode: error: ") and "Traceback" not in err, err
    return err


def test_the_intact_run_opens_in_every_command(run_dir, tmp_path, capsys):
    for name, argv in COMMANDS.items():
        if name == "serve":
            continue  # would bind and serve; the real server is tested in test_serve.py
        assert main(argv(run_dir, tmp_path)) == 0, (name, capsys.readouterr().err)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_a_run_with_bad_stored_settings(run_dir, tmp_path, capsys, corruption, command):
    name, make, mentioned = CORRUPTIONS[corruption]
    bad = corrupted(run_dir, tmp_path, name, make(run_dir))
    before = {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()}
    assert main(COMMANDS[command](bad, tmp_path)) == 2
    err = one_line_error(capsys)
    assert mentioned in err and name in err
    assert {p: p.read_bytes() for p in bad.rglob("*") if p.is_file()} == before  # nothing changed
    assert not (tmp_path / "exported").exists() and not (tmp_path / "updated").exists()


def test_stored_settings_come_back_complete_and_typed(run_dir, tmp_path):
    # an older run without some settings: they take their defaults; a JSON list becomes a tuple
    bad = corrupted(
        run_dir,
        tmp_path,
        "config.json",
        json.dumps({"ode": {"t": 2}, "eval": {"ks": [5, 10], "valid_metric": "ndcg@10"}}),
    )
    run = load_run(bad)
    cfg = RunConfig.from_stored(run.config)
    assert cfg.ode.t == 2.0 and isinstance(cfg.ode.t, float) and cfg.eval.ks == (5, 10)
    assert run.config["train"]["dim"] == TrainConfig().dim  # info can print every section


# ---- the type checks themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ({"ode": {"t": "abc"}}, "ode.t"),
        ({"ode": [1]}, "ode"),
        ({"train": {"dim": "64"}}, "train.dim"),
        ({"train": {"dim": True}}, "train.dim"),
        ({"train": {"lr": None}}, "train.lr"),
        ({"eval": {"ks": "20"}}, "eval.ks"),
        ({"eval": {"ks": [10, "20"]}}, "eval.ks[1]"),
        ({"data": {"ratios": [0.8, 0.2]}}, "data.ratios"),
        ({"data": {"rating_threshold": "x"}}, "data.rating_threshold"),
        ({"baseline": {"alpha": {"a": 1}}}, "baseline.alpha"),
        ({"seed": 1.5}, "seed"),
        ({"seed": 10**30}, "seed"),
        ({"threads": "4"}, "threads"),
        ({"t_auto": "yes"}, "t_auto"),
        ({"model": 3}, "model"),
        ({"ode": {"t": 10**400}}, "ode.t"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(override, key):
    with pytest.raises(ConfigError) as exc:
        RunConfig().override(override)
    assert str(exc.value).startswith(f"{key}: ") and "\n" not in str(exc.value)


def test_values_that_fit_are_normalised():
    cfg = RunConfig().override(
        {
            "train": {"dim": 32.0, "lr": 1},
            "eval": {"ks": 20, "valid_metric": "ndcg@20"},
            "baseline": {"layers": 2},
            "data": {"ratios": [0.7, 0.2, 0.1]},
        }
    )
    assert cfg.train.dim == 32 and type(cfg.train.dim) is int and type(cfg.train.lr) is float
    assert cfg.eval.ks == (20,) and cfg.baseline.layers == (2,) and cfg.data.ratios == (0.7, 0.2, 0.1)
    import numpy as np

    ode = ODEConfig(t=np.float32(1.5), steps=np.int64(3))  # numpy scalars from a search are numbers too
    assert ode.t == 1.5 and type(ode.t) is float and type(ode.steps) is int


def test_model_names_match_the_registry():
    from lightgode.models import MODELS

    assert set(MODEL_NAMES) == set(MODELS)
    with pytest.raises(ConfigError, match="unknown model"):
        RunConfig(model="evil")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
setting_keys = st.sampled_from(
    [(s, f.name) for s, cls in SECTIONS.items() for f in fields(cls)]
    + [(None, f.name) for f in fields(RunConfig) if f.name not in SECTIONS]
)


@settings(max_examples=400, deadline=None)
@given(key=setting_keys, value=json_values)
def test_any_json_value_in_any_setting_is_accepted_typed_or_refused_in_one_line(key, value):
    section, name = key
    override = {section: {name: value}} if section else {name: value}
    try:
        cfg = RunConfig.from_stored(json.loads(json.dumps(override)))
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    got = getattr(getattr(cfg, section), name) if section else getattr(cfg, name)
    default = getattr(SECTIONS[section](), name) if section else getattr(RunConfig(), name)
    assert got is None or type(got) is type(default) or default is None  # tuples stay tuples, floats floats
    json.dumps(cfg.to_dict())  # what a run stores can be written back


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=setting_keys, value=json_values)
def test_any_stored_value_opens_or_is_a_run_dir_error(run_dir, tmp_path_factory, key, value):
    section, name = key
    raw = json.loads((run_dir / "config.json").read_text())
    (raw[section] if section else raw)[name] = value
    bad = corrupted(run_dir, tmp_path_factory.mktemp("h"), "config.json", json.dumps(raw))
    try:
        load_run(bad)
    except RunDirError as exc:
        assert "\n" not in str(exc) and "config.json" in str(exc)


# ---- command-line flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--seed", "-1"], "seed"),
        (["train", "--threads", "-1"], "threads"),
        (["train", "--threads", "0"], "threads"),
        (["synth", "--users", "3", "--items", "3", "--edges", "2", "--seed", "-1", "--out", "x.csv"], "seed"),
        (["serve", "no-such-run", "--body-timeout", "0"], "body_timeout"),
    ],
)
def test_impossible_flags_are_one_line_errors(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert words in one_line_error(capsys)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    "settings_, key",
    [
        ({"train": {"dim": "64"}}, "train.dim"),
        ({"eval": {"ks": "20"}}, "eval.ks"),
        ({"data": [1]}, "data"),
        ({"data": {"data": ["a"]}}, "data.data"),
        ({"seed": -1}, "seed"),
        ({"model": "evil"}, "evil"),
    ],
)
def test_a_config_file_of_the_wrong_types_is_a_one_line_error(settings_, key, tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps(settings_))
    assert main(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "o")]) == 2
    assert key in one_line_error(capsys)
    assert not any(tmp_path.glob("o*"))


def test_a_checkpoint_with_bad_settings_is_refused_on_resume(tmp_path, capsys):
    ckpt = tmp_path / "r.ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"ode": {"t": "abc"}}))
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    assert "ode.t" in one_line_error(capsys)


# ---- the server: body timeout and offline docs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rec(run_dir):
    from lightgode.serving.recommender import Recommender

    return Recommender.load(run_dir)


class LiveServer:
    """A uvicorn server for ``app`` on a free local port, in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def read_until_closed(sock: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open after ``limit`` s."""
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {limit} s (got {data[:200]!r})")
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("body", [b'{"items": [', b""])
def test_a_half_sent_body_gets_408_and_the_connection_closes(rec, body):
    from lightgode.serving.http import ServeConfig, create_app

    with LiveServer(create_app(rec, ServeConfig(body_timeout=1.0))) as port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /recommendations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n" + body
            )
            reply = read_until_closed(s, 15.0)
        assert reply.startswith(b"HTTP/1.1 408") and b"request body not received" in reply
        with socket.create_connection(("127.0.0.1", port)) as s:  # the server still answers others
            payload = json.dumps({"items": ["1"], "k": 2}).encode()
            s.sendall(
                b"POST /recommendations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
            )
            assert read_until_closed(s, 15.0).startswith(b"HTTP/1.1 200")


def test_a_trickled_body_does_not_extend_the_deadline(rec):
    from lightgode.serving.http import ServeConfig, create_app

    with LiveServer(create_app(rec, ServeConfig(body_timeout=1.0))) as port:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /recommendations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            reply = b""
            s.settimeout(0.3)
            for _ in range(40):  # one byte every 0.3 s: each chunk is in time, the whole body is not
                try:
                    s.sendall(b" ")
                    reply += s.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if reply:
                    break
            assert reply.startswith(b"HTTP/1.1 408"), reply


def test_body_timeout_middleware_answers_408_without_a_server():
    from lightgode.serving.http import _BodyLimit

    async def app(scope, receive, send):  # pragma: no cover - never reached
        raise AssertionError("the app must not be called")

    sent = []

    async def receive():
        await asyncio.sleep(3600)

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"100")]}
    asyncio.run(_BodyLimit(app, limit=1000, timeout=0.05)(scope, receive, send))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]


def test_docs_page_loads_nothing_from_the_internet(rec):
    from fastapi.testclient import TestClient

    from lightgode.serving.http import create_app, swagger_assets

    with TestClient(create_app(rec)) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "http://" not in page.text and "https://" not in page.text
        if swagger_assets() is not None:
            import re

            local = re.findall(r"""(?:src|href)="(/[^"]+)\"""", page.text)
            assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= set(local)
            for url in local:
                r = c.get(url)
                assert r.status_code == 200 and len(r.content) > 0, url
            assert '"validatorUrl": null' in page.text  # Swagger UI would otherwise call an online validator
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN: not offered


def test_docs_page_without_the_swagger_files_is_a_local_page(rec, monkeypatch):
    from fastapi.testclient import TestClient

    import lightgode.serving.http as serve

    monkeypatch.setattr(serve, "swagger_assets", lambda: None)
    with TestClient(serve.create_app(rec)) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "/openapi.json" in page.text and "/recommendations" in page.text
        assert "http://" not in page.text and "https://" not in page.text
        assert c.get("/docs-assets/swagger-ui-bundle.js").status_code == 404
