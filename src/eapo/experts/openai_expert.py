"""An expert behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, a hosted
API, or `eapo serve-expert`), built to survive the endpoint misbehaving.

A training run makes tens of thousands of these calls over hours. Endpoints time out,
rate-limit, answer 5xx, send truncated JSON, or die and come back. Whatever happens, `ask`
returns an `ExpertReply`; a call that finally fails has `error` set to `"<cause>: <detail>"`
(causes: `timeout`, `connection`, `http_<status>`, `bad_json`, `bad_reply`, `empty_reply`,
`too_large`, `circuit_open`, `exception`), which the pool counts by cause and the rollout
shows the policy as the "expert unavailable" observation. It never raises for the
endpoint's sake, so a misbehaving expert cannot end a run.

What it does, and why:

- **The official `openai` async client**, with its own retries off (`max_retries=0`): the
  retry loop is ours so that retries are counted, bounded by the pool's deadline, and a
  `Retry-After` longer than the time left gives up at once instead of being cut by the
  pool's timeout after a useless wait.
- **Retries** on timeouts, connection errors, 408, 429 and 5xx, with exponential backoff and
  jitter (`RetryPolicy`); a 429's `Retry-After` (or `retry-after-ms`) is waited at least.
  Malformed JSON, empty replies and other 4xx are not retried: they are the same on a
  second try as often as not, and a retry is a second bill.
- **A total bound per attempt**: `timeout_s` is applied as the client's timeout and as an
  `asyncio` timeout around the whole attempt, since an HTTP read timeout alone restarts at
  every byte and would let a server that drips bytes hold a call for ever.
- **A concurrency limit per endpoint** (`max_concurrency`), shared by every caller of this
  expert; the slot is released while a retry waits.
- **A circuit breaker** (`BreakerPolicy`): after `failures` failed attempts in a row
  (timeouts, connection errors, 408/429/5xx, garbage bodies; not a 400 or an empty
  reply, which come from a live server) the endpoint rests for `cooldown_s` (calls fail at once with `circuit_open`, costing no
  time), then one trial call decides whether it closes again.
- **Bounded replies**: a response body over `max_response_bytes` is cut off while it is
  read (`too_large`); reply text over `max_reply_chars` is truncated (counted, still a
  reply), so a multi-MB reply cannot stall tokenisation in the rollout.
- **An optional reply cache** (`reply_cache.py`), keyed by model, messages, sampling and
  seed. A cache hit reports zero tokens: token and cost metrics count what was paid for.
- **Secrets**: the API key is read from the environment variable named by `api_key_env`
  and lives only inside the client; it is not an attribute, not in `repr`, not in any
  error text, metric or log line of ours (the `openai` client redacts its auth header in
  its own debug logs). Without `api_key_env` the client sends the placeholder "EMPTY",
  and never falls back to `OPENAI_API_KEY`, so a key meant for a provider cannot leak to
  a local server by accident.

Event loops: the expert's client, semaphore and breaker live on a background loop of its
own (`openai_transport.py` says why); `ask` hands the call to that loop and awaits it,
and cancelling `ask` (the pool's timeout) cancels the call there. `close()` stops the
thread; forgetting it costs nothing at exit.

The message format (problem, optional transcript, query) is `eapo.experts.messages`; the
retry and circuit-breaker policies are `eapo.experts.resilience`; the HTTP client, the
background loop and the naming of failures are `eapo.experts.openai_transport`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from eapo.experts.base import EXPERTS, keyed_rng, request_key, stable_hash
from eapo.experts.messages import DEFAULT_SYSTEM_PROMPT, build_messages
from eapo.experts.openai_transport import Failure, LoopThread, ResponseTooLarge, classify, client_maker, one_line
from eapo.experts.reply_cache import CachedReply, ReplyCache, cache_key
from eapo.experts.resilience import BreakerPolicy, CircuitBreaker, RetryPolicy, parse_retry_after
from eapo.types import ExpertReply, ExpertRequest

logger = logging.getLogger(__name__)

__all__ = ["BreakerPolicy", "CircuitBreaker", "OpenAIExpert", "ResponseTooLarge", "RetryPolicy", "parse_retry_after"]

_PLACEHOLDER_KEY = "EMPTY"
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")


# --------------------------------------------------------------------------- the expert


class OpenAIExpert:
    """Asks `model` at `base_url` (an OpenAI-compatible `/v1`) through chat completions.

    `timeout_s` bounds one attempt; `deadline_s` (the pool sets it to its own timeout)
    bounds the whole call, retries and waits included. `seed` (None: send none) is mixed
    with each request's key into the per-request `seed` sent to the server, so a run is
    reproducible where the server honours seeds, and so is the cache key.
    `extra_body` is sent as-is (e.g. `{"chat_template_kwargs": {"enable_thinking": false}}`
    for vLLM/SGLang). `max_tokens_param` names the reply-length field: `max_tokens`
    (vLLM, SGLang) or `max_completion_tokens` (OpenAI's newer models)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str | None = None,
        api_key_env: str | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        include_problem: bool = True,
        include_transcript: bool = True,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        max_tokens_param: str = "max_tokens",
        seed: int | None = 0,
        extra_body: Mapping[str, Any] | None = None,
        timeout_s: float = 30.0,
        deadline_s: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        max_concurrency: int = 64,
        max_reply_chars: int = 8192,
        max_response_bytes: int = 8_000_000,
        cache: ReplyCache | str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be the served model's name, got {model!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_tokens_param not in MAX_TOKENS_PARAMS:
            raise ValueError(f"max_tokens_param must be one of {MAX_TOKENS_PARAMS}, got {max_tokens_param!r}")
        for label, value in (("max_tokens", max_tokens), ("max_concurrency", max_concurrency),
                             ("max_reply_chars", max_reply_chars), ("max_response_bytes", max_response_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be an int >= 1, got {value!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        if deadline_s is not None and not deadline_s > 0:
            raise ValueError(f"deadline_s must be None or > 0 seconds, got {deadline_s}")
        api_key = _PLACEHOLDER_KEY
        if api_key_env:
            api_key = os.environ.get(api_key_env, "")
            if not api_key:
                shown = api_key_env if re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", api_key_env) else "(a variable)"
                raise ValueError(f"api_key_env names {shown}, which is not set (or empty) in the environment")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.api_key_env = api_key_env
        self.system_prompt = system_prompt
        self.include_problem = include_problem
        self.include_transcript = include_transcript
        self.temperature, self.top_p = float(temperature), float(top_p)
        self.max_tokens, self.max_tokens_param = max_tokens, max_tokens_param
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        self.timeout_s = float(timeout_s)
        self.deadline_s = float(deadline_s) if deadline_s is not None else None
        self.retry = retry or RetryPolicy()
        self.breaker_policy = breaker or BreakerPolicy()
        self.max_concurrency = max_concurrency
        self.max_reply_chars = max_reply_chars
        self.max_response_bytes = max_response_bytes
        self.cache = ReplyCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        # The key is captured by this closure only: no attribute holds it.
        self._new_client: Callable[[], Any] = client_maker(api_key, self.base_url, self.timeout_s,
                                                           max_response_bytes, max_concurrency)
        self._loop = LoopThread(f"eapo-expert-{self.name}")
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None
        self.breaker = CircuitBreaker(self.breaker_policy)
        self._counts: dict[str, float] = defaultdict(float)
        self._counts_lock = threading.Lock()

    # ----------------------------------------------------------------- Expert API

    async def ask(self, request: ExpertRequest) -> ExpertReply:
        if self._loop.in_loop():
            return await self._ask(request)
        return await asyncio.wrap_future(self._loop.submit(self._ask(request)))

    def snapshot_and_reset(self) -> dict[str, float]:
        """This expert's own counters since the last call: `retries`, `retried_<cause>`
        (failed attempts that were retried), `truncated`, `cache_hits`, `cache_misses`,
        `breaker_opens`. The pool folds them into its metrics."""
        with self._counts_lock:
            out = dict(self._counts)
            self._counts.clear()
        return out

    def close(self) -> None:
        """Close the HTTP client and stop the background loop."""

        async def shutdown() -> None:
            if self._client is not None:
                await self._client.close()
            self._client = self._sem = None  # a later `ask` starts afresh on a new loop

        self._loop.stop(shutdown)

    def sampling(self) -> dict[str, Any]:
        """The sampling fields of every request (also part of the cache key)."""
        return {"temperature": self.temperature, "top_p": self.top_p, self.max_tokens_param: self.max_tokens,
                **({"extra_body": self.extra_body} if self.extra_body else {})}

    def request_seed(self, request: ExpertRequest) -> int | None:
        if self.seed is None:
            return None
        return stable_hash(self.seed, "openai", request_key(request)) % 2**31

    def __repr__(self) -> str:
        return (f"OpenAIExpert(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r})")

    # ----------------------------------------------------------------- internals

    def _count(self, key: str, n: float = 1.0) -> None:
        with self._counts_lock:
            self._counts[key] += n

    def _ensure_client(self) -> Any:
        if self._client is None:  # created on the expert's own loop, where it is used
            self._client = self._new_client()
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._client

    async def _ask(self, request: ExpertRequest) -> ExpertReply:
        start = time.monotonic()
        messages = build_messages(request, self.system_prompt, include_problem=self.include_problem,
                                  include_transcript=self.include_transcript)
        sampling = self.sampling()
        seed = self.request_seed(request)
        key = cache_key(self.model, messages, sampling, seed) if self.cache is not None else None
        if key is not None:
            hit = await asyncio.to_thread(self.cache.get, key)  # type: ignore[union-attr]
            if hit is not None:
                self._count("cache_hits")
                return ExpertReply(text=self._cut(hit.text), expert=self.name)
            self._count("cache_misses")
        client = self._ensure_client()
        attempt, last = 0, None
        rng = keyed_rng(self.seed or 0, "openai-retry", request_key(request))
        while True:
            if not self.breaker.allow():
                failure = last or Failure("circuit_open", f"{self.base_url} is resting after repeated failures")
                return self._failed(failure)
            try:
                text, usage = await self._attempt(client, messages, sampling, seed, start)
            except Failure as failure:
                last = failure
            else:
                self.breaker.record(True)
                if key is not None:
                    await asyncio.to_thread(self.cache.put, key, CachedReply(text, *usage))  # type: ignore[union-attr]
                return ExpertReply(text=self._cut(text), expert=self.name, prompt_tokens=usage[0],
                                   completion_tokens=usage[1])
            opened = self.breaker.opened
            # Only what says the endpoint is unwell counts against it: a 400 for one request
            # or an empty reply come from a live server.
            self.breaker.record(not (last.retryable or last.cause in ("bad_json", "bad_reply")))
            if self.breaker.opened > opened:
                self._count("breaker_opens")
                logger.warning("expert %s: %s failed %d times in a row; resting it for %.3gs", self.name,
                               self.base_url, self.breaker.consecutive, self.breaker_policy.cooldown_s)
            wait = self._retry_wait(last, attempt, rng.random(), start)
            if wait is None:
                return self._failed(last)
            self._count("retries")
            self._count(f"retried_{last.cause}")
            logger.debug("expert %s: %s; retry %d in %.2fs", self.name, last, attempt + 1, wait)
            await asyncio.sleep(wait)
            attempt += 1

    def _retry_wait(self, failure: Failure, attempt: int, u: float, start: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not failure.retryable or attempt >= self.retry.retries:
            return None
        wait = self.retry.delay(attempt, u)
        if failure.retry_after is not None:
            if failure.retry_after > self.retry.max_retry_after_s:
                return None
            wait = max(wait, failure.retry_after)
        if self.deadline_s is not None and time.monotonic() - start + wait >= self.deadline_s:
            return None  # the next attempt could not even start in time
        return wait

    async def _attempt(self, client: Any, messages: list[dict[str, str]], sampling: dict[str, Any],
                       seed: int | None, start: float) -> tuple[str, tuple[int, int]]:
        assert self._sem is not None
        async with self._sem:
            budget = self.timeout_s
            if self.deadline_s is not None:
                budget = min(budget, self.deadline_s - (time.monotonic() - start))
            if budget <= 0:
                raise Failure("timeout", f"no time left of the {self.deadline_s:.3g}s deadline")
            kwargs = dict(sampling)
            extra_body = kwargs.pop("extra_body", None)
            if seed is not None:
                kwargs["seed"] = seed
            try:
                async with asyncio.timeout(budget):
                    response = await client.chat.completions.create(
                        model=self.model, messages=messages, timeout=budget, extra_body=extra_body, **kwargs)
            except Exception as exc:  # every failure of the call becomes a value
                raise classify(exc, budget) from None
        return self._read(response)

    def _read(self, response: Any) -> tuple[str, tuple[int, int]]:
        from openai.types.chat import ChatCompletion

        if not isinstance(response, ChatCompletion):
            raise Failure("bad_reply", f"expected a chat completion object, got {one_line(response)}")
        if not response.choices:
            raise Failure("bad_reply", "the completion has no choices")
        message = response.choices[0].message
        text = getattr(message, "content", None)
        if text is not None and not isinstance(text, str):
            raise Failure("bad_reply", f"message content is {type(text).__name__}, not text")
        if not text or not text.strip():
            raise Failure("empty_reply", f"finish_reason={response.choices[0].finish_reason}")
        usage = response.usage
        tokens = (int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))
        return text, tokens

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_reply_chars:
            return text
        self._count("truncated")
        return text[: self.max_reply_chars]

    def _failed(self, failure: Failure) -> ExpertReply:
        level = logging.DEBUG if failure.cause in ("circuit_open",) else logging.INFO
        logger.log(level, "expert %s (%s) failed: %s", self.name, self.base_url, failure)
        return ExpertReply(text="", expert=self.name, error=str(failure))


@EXPERTS.register("openai")
def _make_openai(**config: Any) -> OpenAIExpert:
    retry = {k: config.pop(k) for k in ("retries", "backoff_s", "backoff_max_s", "max_retry_after_s") if k in config}
    breaker = {k[len("breaker_"):]: config.pop(k) for k in ("breaker_failures", "breaker_cooldown_s") if k in config}
    if retry:
        config["retry"] = RetryPolicy(**retry)
    if breaker:
        config["breaker"] = BreakerPolicy(**breaker)
    return OpenAIExpert(**config)
