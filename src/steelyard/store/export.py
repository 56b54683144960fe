"""Export runs: CSV (one row per run, one column per headline metric), JSON, MLflow, TensorBoard.

Both files name their schema (:data:`steelyard.serialize.SCHEMA_VERSION`): the JSON is
``{"schema_version": ..., "runs": [...]}``, the CSV's first column is ``schema_version``. Times are
ISO 8601 in UTC with their offset.

MLflow and TensorBoard are optional: they are imported only here, inside the function that needs
them, and a clear error says how to install them when they are missing.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from steelyard.errors import ConfigError
from steelyard.serialize import SCHEMA_KEY, SCHEMA_VERSION, iso_utc, versioned

BASE_COLUMNS = [SCHEMA_KEY, "id", "kind", "model", "created_at", "status"]


def _column(name: str, unit: str | None) -> str:
    """A metric's column: ``name [unit]``; a name that is also a base column is prefixed ``metric:``."""
    head = f"{name} [{unit}]" if unit else name
    return f"metric:{head}" if head in BASE_COLUMNS or head.startswith("metric:") else head


def runs_to_csv(records: list[Any]) -> str:
    """Wide CSV: the schema version and the run's identity, then one column per metric (``name [unit]``),
    empty where absent. A metric whose unit differs between runs gets one column per unit, so no
    column mixes seconds with milliseconds."""
    columns: dict[tuple[str, str | None], str] = {}
    for r in records:
        for name, (_, unit) in r.metrics.items():
            columns.setdefault((name, unit), _column(name, unit))
    ordered = sorted(columns, key=lambda key: columns[key])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*BASE_COLUMNS, *(columns[key] for key in ordered)])
    for r in records:
        values = [r.metrics[name][0] if name in r.metrics and r.metrics[name][1] == unit else None
                  for name, unit in ordered]
        writer.writerow([SCHEMA_VERSION, r.id, r.kind, r.model, iso_utc(r.created_at), r.status,
                         *("" if v is None else repr(float(v)) for v in values)])
    return buffer.getvalue()


def run_to_dict(r: Any, payload: bool = True) -> dict[str, Any]:
    out = {
        "id": r.id,
        "kind": r.kind,
        "model": r.model,
        "created_at": iso_utc(r.created_at),
        "status": r.status,
        "metrics": {k: {"value": v, "unit": u} for k, (v, u) in r.metrics.items()},
        "config": r.config,
        "environment": r.environment,
    }
    if payload:
        out["payload"] = r.payload
    return out


def runs_to_json(records: list[Any], payload: bool = True) -> str:
    return json.dumps(versioned({"runs": [run_to_dict(r, payload) for r in records]}), indent=2, default=str) + "\n"


def _flat_params(config: dict[str, Any]) -> dict[str, str]:
    from steelyard.serialize import flatten

    return {k[:250]: str(v)[:500] for k, v in flatten(config).items() if v is not None}


def export_mlflow(records: list[Any], tracking_uri: str | None = None, experiment: str = "steelyard") -> str:
    """One MLflow run per steelyard run: params from the config, metrics, tags, the payload as an artifact."""
    try:
        import mlflow
    except ImportError:
        raise ConfigError("MLflow export needs the mlflow package: pip install mlflow") from None
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    for r in records:
        with mlflow.start_run(run_name=f"{r.kind} {r.id}: {r.model}"[:250]):
            mlflow.set_tags({"steelyard.run_id": str(r.id), "steelyard.kind": r.kind, "steelyard.model": r.model,
                             "steelyard.status": r.status})
            mlflow.log_params(_flat_params(r.config))
            mlflow.log_metrics({_mlflow_key(k): float(v) for k, (v, _) in r.metrics.items() if v is not None})
            mlflow.log_dict(versioned(run_to_dict(r)), f"steelyard-run-{r.id}.json")
    return mlflow.get_tracking_uri()


def _mlflow_key(name: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. /")
    return "".join(c if c in allowed else "_" for c in name)


def export_tensorboard(records: list[Any], logdir: Path) -> Path:
    """One TensorBoard run folder per steelyard run: scalars for the metrics, the config as text."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("TensorBoard export needs the tensorboard package: pip install tensorboard") from None
    logdir = Path(logdir)
    for r in records:
        writer = SummaryWriter(log_dir=str(logdir / f"{r.id:05d}-{r.kind}"))
        try:
            for name, (value, _) in r.metrics.items():
                if value is not None:
                    writer.add_scalar(name, float(value), global_step=0)
            writer.add_text("config", "```\n" + json.dumps(r.config, indent=2, default=str) + "\n```")
            writer.add_text("model", r.model)
        finally:
            writer.close()
    return logdir
