"""Check a model argument (`--model`, `--policy`) before anything is loaded.

Loading is where a wrong argument used to be found: `from_pretrained` takes a missing
folder for a hub id and answers with the hub's repo-id rules, and offline it retries the
hub for half a minute. These checks cost a stat, a look in the local hub cache, and at
most one hub request without retries, so a command refuses a bad argument at once, with
one line that says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HUB_TIMEOUT_S", "ModelArgumentError", "check_model", "looks_like_path"]

# One hub request, no retries: long enough for a slow link, short enough to fail fast.
HUB_TIMEOUT_S = 10.0

_TRUE = {"1", "ON", "YES", "TRUE"}


class ModelArgumentError(ValueError):
    """A model argument that names no local folder and no reachable hub model."""


def looks_like_path(arg: str) -> bool:
    """Whether the user meant a local path: `/x`, `./x`, `../x`, `~/x`, or a name with a
    path separator that cannot be a hub id (`org/name` has one `/`; `a/b/c` is a path).

    >>> [looks_like_path(a) for a in ("/m", "./m", "~/m", "a/b/c", "Qwen/Qwen2.5-0.5B", "gpt2")]
    [True, True, True, True, False, False]
    """
    if arg in (".", "..") or arg.startswith(("/", "./", "../", "~")):
        return True
    if os.sep != "/" and os.sep in arg:
        return True
    return arg.count("/") > 1


def check_model(arg: str, *, option: str = "--model") -> str:
    """The argument to load from: a local folder (`~` expanded) or a hub id that is in the
    local hub cache or answers on the hub. Raises `ModelArgumentError` otherwise.

    `option` names the command-line option in the message (`--model`, `--policy`)."""
    path = Path(arg).expanduser()
    if path.is_dir():
        return str(path) if arg.startswith("~") else arg
    if path.exists():
        raise ModelArgumentError(f"not a model folder: {arg} (a file; {option} takes a folder or a hub id)")
    if looks_like_path(arg):
        raise ModelArgumentError(f"no such model folder: {arg}")
    _check_hub_id(arg, option)
    return arg


def _check_hub_id(repo_id: str, option: str) -> None:
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    local = f"pass a local model folder instead ({option} /path/to/model)"
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ModelArgumentError(f"no such model folder, and not a hub id: {repo_id}") from None
    cached = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):  # downloaded before: from_pretrained finds it without the hub
        return
    if _offline():
        raise ModelArgumentError(f"{repo_id}: no such local folder, and not in the local hub cache "
                                 f"(HF_HUB_OFFLINE is set); {local}")
    try:
        model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return  # it exists; access is from_pretrained's to check, with the user's token
    except RepositoryNotFoundError:
        raise ModelArgumentError(f"{repo_id}: no such local folder, and no such model on the hub "
                                 f"(or it is private); {local}") from None
    except Exception as e:  # noqa: BLE001 - any failure to reach the hub is the same answer
        raise ModelArgumentError(f"{repo_id}: no such local folder, and the hub cannot be reached "
                                 f"({type(e).__name__}); {local}") from None


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE
