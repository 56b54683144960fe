"""A Hugging Face hub id (or anything ``from_pretrained`` resolves): the catch-all, tried last."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steelyard.errors import ModelSourceError, UnsupportedConfigError
from steelyard.models.catalog import closest_names
from steelyard.models.handle import ModelHandle
from steelyard.models.hf import from_config, load_pretrained

if TYPE_CHECKING:
    from steelyard.models.loading import LoadConfig


class HubLoader:
    """Every name that is not a local path; a name the hub cannot provide gets close catalog names."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        return not Path(source).expanduser().exists()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
        except ValueError as exc:
            raise UnsupportedConfigError(f"'{source}': {str(exc).splitlines()[0]}") from exc
        except (OSError, Exception) as exc:  # transformers raises OSError, or hub errors when offline
            hints = closest_names(source)
            hint = f"; catalog architectures with a close name: {', '.join(hints)}" if hints else ""
            raise ModelSourceError(
                f"model '{source}' not found: not a local path, not a factory 'module:function', not in the "
                f"catalog, and the Hugging Face hub could not provide it{hint}"
            ) from exc
        if cfg.config_only:
            return from_config(config, source, "hub", cfg)
        return load_pretrained(source, config, "hub", cfg, path=None)


LOADER = HubLoader()
