"""HTTP API over a Recommender (FastAPI). ``create_app(recommender)`` builds it; ``lightgode serve`` runs it.

Endpoints (raw ids in and out; the OpenAPI schema is at ``/openapi.json``, the docs page at ``/docs``):

- ``GET /health``
- ``GET /users/{user_id}/recommendations?k=20&exclude_seen=true``
- ``POST /recommendations`` with ``{"items": [...], "k": 20}``: a user the model has never seen (fold-in)
- ``GET /items/{item_id}/similar?k=20``

Unknown ids give 404, bad parameters 422, bodies over ``max_body_bytes`` 413, a body not received in full within
``body_timeout`` seconds 408 (and the connection is closed); every error is JSON ``{"detail": ...}``. ``k`` above
``max_k`` is capped to it.

The docs page needs no internet: Swagger UI's script and style sheet are served by the app itself from the copy
that the ``fastapi-offline`` package ships (``/docs-assets/``); without that package ``/docs`` is a small local
page that links the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import html
import importlib.resources
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path as FilePath

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from lightgode.errors import ConfigError, UnknownIdError
from lightgode.fieldtypes import check_fields
from lightgode.serving.recommender import Recommendation, Recommender

# Read by ``app_from_environ`` in each uvicorn worker process (set by ``lightgode serve --workers N``).
ENV_RUN, ENV_OPTIONS = "LIGHTGODE_SERVE_RUN", "LIGHTGODE_SERVE_OPTIONS"


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    default_k: int = 20  # list length when k is not given
    max_k: int = 1000  # larger k is capped to this
    max_body_bytes: int = 64 * 1024  # larger request bodies get 413
    max_history: int = 2000  # most item ids in one POST /recommendations
    body_timeout: float = 10.0  # seconds to receive a whole request body; slower clients get 408 and are cut off

    def __post_init__(self) -> None:
        check_fields(self, "serve")
        for name in ("default_k", "max_k", "max_body_bytes", "max_history"):
            v = getattr(self, name)
            if v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v}")
        if not (0 < self.body_timeout and math.isfinite(self.body_timeout)):
            raise ConfigError(f"body_timeout must be a number of seconds > 0, got {self.body_timeout}")


class Item(BaseModel):
    item: str
    rank: int
    score: float


class UserRecommendations(BaseModel):
    user: str
    items: list[Item]


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[StrictStr | StrictInt] = Field(min_length=1, description="raw ids of the user's items")
    k: StrictInt = Field(20, ge=1, description="list length (capped at the server's max_k)")
    exclude_seen: bool = True


class HistoryRecommendations(BaseModel):
    items: list[Item]


class SimilarItems(BaseModel):
    item: str
    items: list[Item]


class Health(BaseModel):
    status: str
    users: int
    items: int


def _items(recs: list[Recommendation]) -> list[dict]:
    return [{"item": r.item, "rank": r.rank, "score": r.score} for r in recs]


class _BodyLimit:
    """ASGI middleware: read the request body up to ``limit`` bytes within ``timeout`` seconds, answer 413 beyond
    the size, 408 (closing the connection) past the time, else replay it to the app."""

    def __init__(self, app, limit: int, timeout: float) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_error(send, 413, f"request body larger than {self.limit} bytes")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout  # for the whole body: a trickle of small chunks does not extend it
        chunks, size = [], 0
        while True:
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                await _send_error(send, 408, f"request body not received within {self.timeout:g} s")
                return
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _send_error(send, 413, f"request body larger than {self.limit} bytes")
                return
            if not msg.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _send_error(send, status: int, detail: str) -> None:
    """A JSON error response that closes the connection (the rest of the request is never read)."""
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def swagger_assets() -> FilePath | None:
    """The folder of the Swagger UI files shipped by the ``fastapi-offline`` package, or None without it."""
    try:
        folder = FilePath(str(importlib.resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if all((folder / name).is_file() for name in DOCS_ASSETS) else None


def _add_docs(app: FastAPI) -> None:
    """``/docs`` without a CDN: Swagger UI from local files under ``/docs-assets``, or a plain local page."""
    assets = swagger_assets()
    if assets is not None:
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.staticfiles import StaticFiles

        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - API",
                swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
                swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
                swagger_favicon_url=f"{root}/docs-assets/favicon.png",
                swagger_ui_parameters={"validatorUrl": None},
            )  # no call to a validator

        return

    @app.get("/docs", include_in_schema=False)
    async def plain_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        rows = "".join(
            f"<li><code>{html.escape(m)} {html.escape(r.path)}</code> {html.escape(r.summary or r.name)}</li>"
            for r in app.routes
            if getattr(r, "include_in_schema", False)
            for m in sorted(getattr(r, "methods", ()) or ())
        )
        return HTMLResponse(
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(app.title)} - API'
            f"</title></head><body><h1>{html.escape(app.title)}</h1><p>{html.escape(app.description)}"
            f'</p><ul>{rows}</ul><p>The full schema: <a href="{root}{app.openapi_url}">'
            f"{app.openapi_url}</a> (install fastapi-offline for the interactive page).</p>"
            f"</body></html>"
        )


def _json_safe_errors(errors) -> list[dict]:
    """Validation errors without the offending input values, which may not be representable in JSON
    (Python's parser accepts ``NaN`` and ``Infinity``; a response carrying them back would fail with a 500)."""
    return [
        {"type": e.get("type"), "loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]


def create_app(rec: Recommender, config: ServeConfig = ServeConfig()) -> FastAPI:
    """A FastAPI app answering from ``rec`` (handlers run on the event loop: scoring is sub-millisecond).

    Parameters
    ----------
    rec : Recommender
        What answers (``Recommender.load(run_dir)``); fold-in (``POST /recommendations``) needs a LightGODE or
        DirectAU run.
    config : ServeConfig
        Default and largest ``k``, request body limits.

    Returns
    -------
    fastapi.FastAPI
        Serve it with ``uvicorn.run(app, host=..., port=...)``, or try it with ``fastapi.testclient.TestClient``.
    """
    app = FastAPI(
        title="lightgode",
        version="1",
        description="Top-K recommendations from a LightGODE run.",
        docs_url=None,
        redoc_url=None,
    )  # FastAPI's pages load their scripts from a CDN
    app.add_middleware(_BodyLimit, limit=config.max_body_bytes, timeout=config.body_timeout)
    _add_docs(app)

    @app.exception_handler(UnknownIdError)
    async def _unknown(_request, exc: UnknownIdError):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConfigError)
    async def _bad(_request, exc: ConfigError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        return JSONResponse({"detail": _json_safe_errors(exc.errors())}, status_code=422)

    def cap(k: int) -> int:
        return min(k, config.max_k)

    @app.get("/health", response_model=Health)
    async def health():
        return JSONResponse({"status": "ok", "users": rec.n_users, "items": rec.n_items})

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=UserRecommendations,
        responses={404: {"description": "unknown user id"}},
    )
    async def user_recommendations(
        user_id: str = Path(..., max_length=512),
        k: int = Query(config.default_k, ge=1, description="list length (capped)"),
        exclude_seen: bool = Query(True),
    ):
        return JSONResponse({"user": user_id, "items": _items(rec.recommend(user_id, cap(k), exclude_seen))})

    @app.post(
        "/recommendations",
        response_model=HistoryRecommendations,
        responses={404: {"description": "unknown item id"}, 413: {"description": "body too large"}},
    )
    async def history_recommendations(req: HistoryRequest):
        if len(req.items) > config.max_history:
            raise ConfigError(f"at most {config.max_history} items per request, got {len(req.items)}")
        recs = rec.recommend_for_history([str(i) for i in req.items], cap(req.k), req.exclude_seen)
        return JSONResponse({"items": _items(recs)})

    @app.get(
        "/items/{item_id}/similar", response_model=SimilarItems, responses={404: {"description": "unknown item id"}}
    )
    async def similar(
        item_id: str = Path(..., max_length=512),
        k: int = Query(config.default_k, ge=1, description="list length (capped)"),
    ):
        return JSONResponse({"item": item_id, "items": _items(rec.similar_items(item_id, cap(k)))})

    return app


def app_from_environ() -> FastAPI:
    """uvicorn factory for worker processes: the run directory and options come from the environment
    variables that ``lightgode serve`` sets before starting the workers."""
    import torch

    from lightgode.serving.foldin import FoldInConfig
    from lightgode.serving.index import IndexConfig

    torch.set_num_threads(1)  # one scoring thread per worker: workers, not threads, share the cores
    opts = json.loads(os.environ.get(ENV_OPTIONS, "{}"))
    index = IndexConfig(**opts["index"]) if opts.get("index") else None
    rec = Recommender.load(os.environ[ENV_RUN], foldin=FoldInConfig(**opts.get("foldin", {})), index=index)
    if index is not None:
        rec.item_index()  # build before the first request
    return create_app(rec, ServeConfig(**opts.get("serve", {})))
