"""`eapo serve-expert`: an OpenAI-compatible expert server around the built-in oracle or a
local Hugging Face model (see `eapo.serving`). Parses, builds, serves; nothing else.

Binds 127.0.0.1 by default. Serving on another interface without `--api-key-env` is
allowed (a trusted network) but warned about. The key itself is read from the named
environment variable and is never printed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Annotated, Optional

import typer

from eapo.cli._common import setup_logging

log = logging.getLogger(__name__)


def serve_expert(
    model: Annotated[str, typer.Option(help="'oracle' (the built-in chain task) or a local model folder / hub id.")],
    host: Annotated[str, typer.Option(help="Interface to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one (printed).")] = 8000,
    api_key_env: Annotated[Optional[str], typer.Option(help="Require the key held by this environment variable.")] = None,
    served_model_name: Annotated[Optional[str], typer.Option(help="Model name clients must send (default: --model).")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above).")] = 1 << 20,
    max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 4096,
    delay_s: Annotated[float, typer.Option(help="Oracle only: wait this long per reply (a stand-in for a slow model).")] = 0.0,
    faults: Annotated[Optional[str], typer.Option(help="Fault injection for testing clients, e.g. '500,429:1,slow:5'; see eapo.serving.faults.")] = None,
    device: Annotated[Optional[str], typer.Option(help="Model device (default: cuda if available, else cpu).")] = None,
    verbose: bool = False,
) -> None:
    """Serve an expert over the OpenAI chat-completions protocol (/v1/chat/completions, /v1/models)."""
    setup_logging(verbose)
    from eapo.models.resolve import check_model
    from eapo.serving.app import create_app
    from eapo.serving.backends import HFChatBackend, build_backend
    from eapo.serving.faults import FaultPlan
    from eapo.serving.runner import bind, make_server

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            typer.echo(f"error: --api-key-env names {api_key_env}, which is not set (or empty)", err=True)
            raise typer.Exit(2)
    if not _is_loopback(host) and api_key is None:
        log.warning("serving on %s without an API key: anyone who can reach this port can use the expert", host)
    try:
        plan = FaultPlan(faults) if faults else None
        # A wrong folder or an unreachable hub id is refused before anything loads.
        source = model if model == "oracle" else check_model(model)
        backend = build_backend(source, delay_s=delay_s, device=device)
        if isinstance(backend, HFChatBackend):
            backend.load()
        app = create_app(backend, served_model=served_model_name or model, api_key=api_key,
                         max_body_bytes=max_body_bytes, max_tokens_limit=max_tokens_limit, faults=plan)
        sock = bind(host, port)
    except (ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    shown = f"[{host}]" if ":" in host else host
    # One line on stdout that scripts (and the tests) wait for.
    typer.echo(f"serving {served_model_name or model} on http://{shown}:{sock.getsockname()[1]}/v1", err=False)
    make_server(app, log_level="debug" if verbose else "warning").run(sockets=[sock])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
