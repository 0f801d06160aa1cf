"""The OpenAI-compatible HTTP app of `eapo serve-expert`: `/v1/chat/completions`,
`/v1/models`, and an unauthenticated `/health`.

Every request is checked before a backend sees it, and every failure is an answer, never
a crash: a body over `max_body_bytes` gets 413 (checked on the declared length and again
while reading, for chunked bodies), a body that is not JSON or misses fields gets 400 in
OpenAI's error envelope, an unknown model 404, a missing or wrong key 401, and anything
the backend raises unexpectedly 500 (logged here, with no request content). Requests for
what we do not support (`stream`, `n > 1`) get 400 rather than a silent wrong answer.

The API key, when set, is compared in constant time and never logged. (No `from __future__
import annotations` here: FastAPI reads the handlers' annotations at run time, and the
`Request` type is imported inside `create_app` to keep `import eapo.serving` light.) Fault injection
(`faults.py`) happens after validation, so a faulty server still validates requests.
"""

import hmac
import json
import logging
from typing import Any

from eapo.serving.backends import BadRequest, ChatBackend, Completion, SamplingRequest
from eapo.serving.faults import Fault, FaultPlan
from eapo.serving.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ModelCard,
    ModelList,
    ResponseMessage,
    Usage,
    error_body,
)

logger = logging.getLogger(__name__)

__all__ = ["create_app"]

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_TOKENS = 256


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: "str | None" = None,
                 headers: "dict[str, str] | None" = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type_, code, headers


def create_app(
    backend: ChatBackend,
    *,
    served_model: str,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    max_tokens_limit: int = 4096,
    faults: FaultPlan | None = None,
) -> Any:
    """A FastAPI app serving `backend` under the model name `served_model`."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    if max_body_bytes < 1 or default_max_tokens < 1 or max_tokens_limit < default_max_tokens:
        raise ValueError("need max_body_bytes >= 1 and 1 <= default_max_tokens <= max_tokens_limit")
    app = FastAPI(title="eapo expert", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.faults = faults

    def error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
              headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_body(message, type_, code), status_code=status, headers=headers)

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise _HTTPError(401, "missing or invalid API key (send Authorization: Bearer <key>)",
                             "authentication_error", "invalid_api_key")

    @app.exception_handler(_HTTPError)
    async def _http_error(request: Request, exc: _HTTPError) -> JSONResponse:
        return error(exc.status, exc.message, exc.type, exc.code, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "internal server error", "server_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_key(request)
        return ModelList(data=[ModelCard(id=served_model)]).model_dump()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        check_key(request)
        body = await _read_capped(request, max_body_bytes)
        req = _parse(body)
        if req.model != served_model:
            raise _HTTPError(404, f"model {req.model!r} is not served here; this server serves {served_model!r}",
                             "invalid_request_error", "model_not_found")
        if req.stream:
            raise _HTTPError(400, "stream=true is not supported by this server", code="unsupported")
        if req.n != 1:
            raise _HTTPError(400, "only n=1 is supported by this server", code="unsupported")
        limit = req.reply_limit() or default_max_tokens
        if limit > max_tokens_limit:
            raise _HTTPError(400, f"max_tokens {limit} is over this server's limit of {max_tokens_limit}")
        params = SamplingRequest(max_tokens=limit, temperature=req.temperature or 0.0,
                                 top_p=req.top_p if req.top_p is not None else 1.0, seed=req.seed,
                                 stop=tuple(req.stop_list()))
        fault = faults.next() if faults is not None else None
        if fault is not None and fault.kind == "slow":
            import asyncio

            await asyncio.sleep(fault.arg)
        early = _fault_response(fault) if fault is not None else None
        if early is not None:
            return early
        messages = [m.model_dump() for m in req.messages]
        try:
            completion = await backend.complete(messages, params)
        except BadRequest as e:
            raise _HTTPError(400, str(e)) from None
        except Exception:  # the backend's failure is a 500 for this request, not the server's end
            logger.exception("backend %s failed", getattr(backend, "name", type(backend).__name__))
            return error(500, "internal server error", "server_error")
        if fault is not None:
            completion = _fault_completion(fault, completion)
        payload = ChatCompletionResponse(
            model=served_model,
            choices=[Choice(message=ResponseMessage(content=completion.text),
                            finish_reason="length" if completion.finish_reason == "length" else "stop")],
            usage=Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                        total_tokens=completion.prompt_tokens + completion.completion_tokens),
        ).model_dump()
        if fault is not None and fault.kind in ("bad_json", "truncated"):
            return _broken_json(fault, payload)
        return JSONResponse(payload)

    return app


async def _read_capped(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _HTTPError(413, f"request body of {declared} bytes is over the limit of {limit}", code="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _HTTPError(413, f"request body is over the limit of {limit} bytes", code="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> ChatCompletionRequest:
    from pydantic import ValidationError

    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise _HTTPError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise _HTTPError(400, f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()[:5])
        raise _HTTPError(400, f"invalid request: {problems}", code="invalid_request") from None


def _fault_response(fault: Fault) -> Any:
    """The whole response for faults that replace the answer; None for the others."""
    from fastapi.responses import JSONResponse, Response

    if fault.kind == "http":
        headers = {"Retry-After": f"{fault.arg:g}"} if fault.status == 429 or (fault.arg and fault.status == 503) else None
        return JSONResponse(error_body(f"injected fault: HTTP {fault.status}", "server_error" if fault.status >= 500
                                       else "rate_limit_error" if fault.status == 429 else "invalid_request_error"),
                            status_code=fault.status, headers=headers)
    if fault.kind == "empty_body":
        return Response(b"", status_code=200, media_type="application/json")
    if fault.kind == "html":
        return Response("<html><body>502 Bad Gateway</body></html>", status_code=200, media_type="text/html")
    return None


def _fault_completion(fault: Fault, completion: Completion) -> Completion:
    if fault.kind == "empty":
        return Completion(text="", prompt_tokens=completion.prompt_tokens, completion_tokens=0)
    if fault.kind == "huge":
        pad = " " + "x" * int(fault.arg)
        return Completion(text=completion.text + pad, prompt_tokens=completion.prompt_tokens,
                          completion_tokens=completion.completion_tokens + len(pad))
    return completion


def _broken_json(fault: Fault, payload: dict[str, Any]) -> Any:
    from starlette.responses import Response

    full = json.dumps(payload).encode("utf-8")
    half = full[: len(full) // 2]
    if fault.kind == "bad_json":
        return Response(half, status_code=200, media_type="application/json")

    class _CutOff(Response):
        """Declares the whole body, sends half, and returns: the server closes the connection."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(full)).encode())]})
            await send({"type": "http.response.body", "body": half, "more_body": True})

    return _CutOff()
