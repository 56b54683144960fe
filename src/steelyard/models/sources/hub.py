"""A Hugging Face hub id (or anything ``from_pretrained`` resolves): the catch-all, tried last."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steelyard.models.catalog import closest_names
from steelyard.models.handle import ModelHandle
from steelyard.models.hf import from_config, load_pretrained
from steelyard.models.loading import hub_failure

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


class HubLoader:
    """Every name that is not a local path; a failure names its cause (:func:`hub_failure`), and a name
    the hub does not have gets close catalog names."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        return not Path(source).expanduser().exists()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
        except Exception as exc:  # transformers raises OSError (hub errors as its cause) or ValueError
            hints = closest_names(source)
            hint = f"; catalog architectures with a close name: {', '.join(hints)}" if hints else ""
            raise hub_failure(source, exc, hint) from exc
        if cfg.config_only:
            return from_config(config, source, "hub", cfg)
        return load_pretrained(source, config, "hub", cfg, path=None)


LOADER = HubLoader()
