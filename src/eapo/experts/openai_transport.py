"""How `OpenAIExpert` talks HTTP and names what went wrong, kept apart from the expert
(`openai_expert.py`), which decides when to retry, how many calls run at once, what is
cached and what is counted.

- **The client** (`client_maker`): the official `openai` async client with its own
  retries off (`max_retries=0`; `openai_expert.py` says why). The factory's closure is
  the only holder of the API key. Its HTTP client and transport come from the library
  the installed `openai` is built on (httpx2 for openai 3, httpx before), so no second
  HTTP library is needed.
- **Bounded bodies** (`_capped_transport`): a body over `max_response_bytes` is cut off
  while it is read, and one that declares a larger `Content-Length` is refused before it
  is read (`ResponseTooLarge`, cause `too_large`), so an oversized reply costs about
  the limit in reading and memory, not its whole length.
- **One loop for the client's life** (`LoopThread`): the pool runs each consultation
  round on a fresh event loop (`ExpertPool.ask_many_sync`), but an HTTP connection pool
  belongs to one loop. So each expert owns one background thread with its own loop,
  where its client, semaphore and breaker live for its whole life (connections are
  reused across rounds). The thread is a daemon, so an expert that is never closed costs
  nothing at exit.
- **Failures as values** (`classify`): every exception of an attempt becomes a
  `Failure` with a cause, a detail, whether another attempt may help and the wait a
  server asked for; the expert's retry loop and circuit breaker read only these, and a
  call never raises for the endpoint's sake. The chain of `__cause__`/`__context__` is
  searched, because the `openai` client wraps what the transport raises. Details are one
  line of at most 160 characters: they end up in `ExpertReply.error`, in logs and in
  metrics, where a server's whole error page does not belong.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from eapo.experts.resilience import parse_retry_after

logger = logging.getLogger(__name__)

__all__ = ["Failure", "LoopThread", "ResponseTooLarge", "classify", "client_maker", "one_line"]

T = TypeVar("T")
_MAX_DETAIL = 160


# --------------------------------------------------------------------------- transport


class ResponseTooLarge(Exception):
    """A response body went over the configured limit while it was being read."""


def _httpx() -> Any:
    """The HTTP library under the installed `openai`: httpx2 (openai 3) or httpx (openai 1-2)."""
    try:
        import httpx2
    except ImportError:  # pragma: no cover - depends on the installed openai
        import httpx as httpx2
    return httpx2


def _capped_transport(limit: int, max_connections: int) -> Any:
    """An httpx transport that stops reading a response body at `limit` bytes."""
    httpx2 = _httpx()

    class _CappedStream(httpx2.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner, self.seen = inner, 0

        async def __aiter__(self):  # type: ignore[override]
            async for chunk in self.inner:
                self.seen += len(chunk)
                if self.seen > limit:
                    raise ResponseTooLarge(f"response body over {limit} bytes")
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class _CappedTransport(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            self.inner = httpx2.AsyncHTTPTransport(limits=limits)

        async def handle_async_request(self, request: Any) -> Any:
            response = await self.inner.handle_async_request(request)
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await response.aclose()
                raise ResponseTooLarge(f"response body of {declared} bytes, over {limit}")
            return httpx2.Response(status_code=response.status_code, headers=response.headers,
                                   stream=_CappedStream(response.stream), extensions=response.extensions)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return _CappedTransport()


def client_maker(api_key: str, base_url: str, timeout_s: float, max_response_bytes: int,
                  max_connections: int) -> Callable[[], Any]:
    """A factory of the expert's `openai.AsyncOpenAI` client (call it on the loop that will
    use the client). The client's own retries are off: ours are counted and bounded."""

    def make() -> Any:
        import openai

        http = _httpx().AsyncClient(transport=_capped_transport(max_response_bytes, max_connections),
                                  timeout=timeout_s, follow_redirects=True)
        return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s,
                                  http_client=http)

    return make


class LoopThread:
    """One event loop on a daemon thread, started on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    def in_loop(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self, last: Callable[[], Awaitable[None]] | None = None, timeout_s: float = 5.0) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if last is not None:
            try:
                asyncio.run_coroutine_threadsafe(last(), loop).result(timeout_s)  # type: ignore[arg-type]
            except Exception as e:  # closing must not fail a caller that is done with the expert
                logger.debug("ignored while closing %s: %s: %s", self.name, type(e).__name__, e)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()


# --------------------------------------------------------------------------- failures


class Failure(Exception):
    def __init__(self, cause: str, detail: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(f"{cause}: {detail}")
        self.cause, self.detail, self.retryable, self.retry_after = cause, detail, retryable, retry_after


def classify(exc: BaseException, budget: float) -> Failure:
    """Name what went wrong with one attempt, and whether another attempt may help."""
    import openai

    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return Failure("timeout", f"no reply within {budget:.3g}s", retryable=True)
    chain = _causes(exc)
    too_large = next((e for e in chain if isinstance(e, ResponseTooLarge)), None)
    if too_large is not None:
        return Failure("too_large", str(too_large))
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        retry_after = parse_retry_after(exc.response.headers) if code in (429, 503) else None
        retryable = code in (408, 429) or code >= 500
        return Failure(f"http_{code}", one_line(exc.message), retryable=retryable, retry_after=retry_after)
    if isinstance(exc, openai.APIConnectionError):
        root = chain[-1]
        return Failure("connection", f"{type(root).__name__}: {one_line(str(root))}", retryable=True)
    if isinstance(exc, json.JSONDecodeError) or any(isinstance(e, json.JSONDecodeError) for e in chain):
        return Failure("bad_json", one_line(str(exc)))
    return Failure("exception", f"{type(exc).__name__}: {one_line(str(exc))}")


def _causes(exc: BaseException) -> list[BaseException]:
    out, seen = [exc], {id(exc)}
    while True:
        nxt = out[-1].__cause__ or out[-1].__context__
        if nxt is None or id(nxt) in seen:
            return out
        out.append(nxt)
        seen.add(id(nxt))


def one_line(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
