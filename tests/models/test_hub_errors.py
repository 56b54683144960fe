"""A hub id that fails to load says why: gated / unauthorised, offline or no network, not found, or
transformers' own error — never "not found" for all of them (issue 16).

The hub's and transformers' real exception classes are raised by a monkeypatched ``AutoConfig``,
both bare and wrapped the way transformers wraps them (an ``OSError`` raised from the hub error);
one real offline attempt goes through the CLI.
"""

from __future__ import annotations

import json
from importlib import import_module

import pytest

from cli_helpers import one_line_error, steelyard
from steelyard.errors import ModelSourceError, UnsupportedConfigError
from steelyard.models import load_model

REPO = "some-org/some-model"


def _response(status: int):
    from huggingface_hub import errors as hub

    http = import_module(hub.HfHubHTTPError.__mro__[1].__module__.split(".")[0])  # httpx (or its fork) of the hub
    return http.Response(status, request=http.Request("GET", f"https://huggingface.co/{REPO}/resolve/main/config.json"))


def _gated():
    from huggingface_hub.errors import GatedRepoError

    return GatedRepoError("Access to model some-org/some-model is restricted.", response=_response(401))


def _unauthorised():
    from huggingface_hub.errors import HfHubHTTPError

    return HfHubHTTPError("401 Client Error: Unauthorized", response=_response(401))


def _missing():
    from huggingface_hub.errors import RepositoryNotFoundError

    return RepositoryNotFoundError("Repository Not Found for url", response=_response(404))


def _revision():
    from huggingface_hub.errors import RevisionNotFoundError

    return RevisionNotFoundError("Revision Not Found for url", response=_response(404))


def _no_cache():
    from huggingface_hub.errors import LocalEntryNotFoundError

    return LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic has been "
                                   "disabled.")


def _no_network():
    from huggingface_hub import errors as hub

    http = import_module(hub.HfHubHTTPError.__mro__[1].__module__.split(".")[0])
    return http.ConnectError("[Errno -3] Temporary failure in name resolution")


def _unknown_architecture(tmp_path):
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    try:
        AutoConfig.from_pretrained(str(tmp_path))
    except ValueError as exc:
        return exc
    raise AssertionError("transformers accepted an unknown model type")


def _remote_code(tmp_path):
    from transformers.dynamic_module_utils import resolve_trust_remote_code

    try:
        resolve_trust_remote_code(False, REPO, has_local_code=False, has_remote_code=True)
    except ValueError as exc:
        return exc
    raise AssertionError("transformers ran remote code without trust_remote_code")


def _wrapped(make):
    """The hub error as transformers raises it: an OSError of its own, the hub's error as the cause."""

    def build(tmp_path):
        cause = make()
        try:
            raise OSError(f"We couldn't load {REPO}; see the error above.") from cause
        except OSError as exc:
            return exc

    return build


CASES = [
    ("gated", lambda _: _gated(), ModelSourceError, ("gated", "hf auth login", "HF_TOKEN")),
    ("gated-wrapped", _wrapped(_gated), ModelSourceError, ("gated", "HF_TOKEN")),
    ("unauthorised", lambda _: _unauthorised(), ModelSourceError, ("HTTP 401", "hf auth login")),
    ("not-found", lambda _: _missing(), ModelSourceError, ("not found", "no such repository")),
    ("not-found-wrapped", _wrapped(_missing), ModelSourceError, ("not found", "no such repository")),
    ("revision", lambda _: _revision(), ModelSourceError, ("revision does not exist",)),
    ("no-network", lambda _: _no_network(), ModelSourceError, ("cannot reach", "network", "HF_HUB_OFFLINE=1")),
    ("no-cache-online", _wrapped(_no_cache), ModelSourceError, ("cannot reach", "HF_HUB_OFFLINE")),
    ("unknown-architecture", _unknown_architecture, UnsupportedConfigError,
     ("model type `no-such-architecture`", "does not recognize")),
    ("remote-code", _remote_code, UnsupportedConfigError, ("contains custom code", "--trust-remote-code")),
]


@pytest.mark.parametrize(("make", "error", "words"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_hub_failure_names_its_cause(make, error, words, tmp_path, monkeypatch):
    import huggingface_hub.constants
    import transformers

    raised = make(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the online branches
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fail)
    with pytest.raises(error) as info:
        load_model(REPO)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    if not any("not found" in w for w in words):
        assert "not found" not in message  # the old message hid every cause behind this


def test_offline_flag_is_named_when_the_cache_lacks_the_model(monkeypatch):
    import huggingface_hub.constants
    import transformers

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def fail(*args, **kwargs):
        raise _wrapped(_no_cache)(None)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fail)
    with pytest.raises(ModelSourceError, match=r"switched off \(offline: HF_HUB_OFFLINE=1\)"):
        load_model(REPO)


def test_a_real_offline_attempt_through_the_cli_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing to fall back on
    monkeypatch.chdir(tmp_path)
    code = steelyard("profile", "no-such-org/no-such-model-xyz", "--no-save")
    assert code == 2
    one_line_error(capsys, "no-such-org/no-such-model-xyz", "HF_HUB_OFFLINE", "offline")


def test_weights_that_the_hub_cannot_send_name_the_cause_too(monkeypatch):
    """The config came from the cache; the weights did not (offline, or a gated file)."""
    import huggingface_hub.constants
    import transformers
    from transformers import BertConfig

    from tiny_configs import BERT

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda *a, **k: BertConfig(**BERT))

    def fail(*args, **kwargs):
        raise _wrapped(_no_cache)(None)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fail)
    with pytest.raises(ModelSourceError, match="HF_HUB_OFFLINE=1"):
        load_model(REPO)
