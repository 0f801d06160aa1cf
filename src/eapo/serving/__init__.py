"""An OpenAI-compatible expert server (`eapo serve-expert`), for users without vLLM and for
the tests: the built-in oracle or a local Hugging Face model behind `/v1/chat/completions`
and `/v1/models`, with request validation, an optional API key, and fault injection.

Importing this package is light; FastAPI, uvicorn and torch load when an app is built or
a model is loaded.
"""

from eapo.serving.backends import BadRequest, ChatBackend, Completion, HFChatBackend, OracleBackend, SamplingRequest, build_backend
from eapo.serving.faults import Fault, FaultPlan
from eapo.serving.app import create_app
from eapo.serving.runner import ServerThread

__all__ = ["BadRequest", "ChatBackend", "Completion", "Fault", "FaultPlan", "HFChatBackend", "OracleBackend",
           "SamplingRequest", "ServerThread", "build_backend", "create_app"]
