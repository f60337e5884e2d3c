"""Serialize a trained model to bytes and back, with what the store's registry needs to know.

A bundle is one JSON document: the booster as LightGBM's own text format, the feature list it was
trained on, the calibrator, the training window, holdout metrics and curves, feature importance, why
it was (not) promoted, and a format version. JSON keeps it inspectable and free of pickle's code
execution on load.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import lightgbm as lgb

from engine.calibration import Calibrator
from engine.features import FEATURE_COLUMNS
from engine.models import ModelSpec, TrainedModel, importance_shares

BUNDLE_VERSION = 1


class BundleError(ValueError):
    """A stored bundle cannot be used: wrong version, or trained on different features."""


def model_metadata(model: TrainedModel) -> dict[str, object]:
    """Everything about a model except the booster itself (what a registry table indexes).

    `calibration` and `gains` are the holdout curves of the promoted kind; `importance` is given only
    when LightGBM is promoted, since a rejected booster's drivers explain no score.
    """
    promoted_booster = model.booster if model.kind == "lightgbm" else None
    return {
        "version": BUNDLE_VERSION,
        "spec": asdict(model.spec),
        "kind": model.kind,
        "reason": model.reason,
        "features": list(FEATURE_COLUMNS),
        "window": list(model.window) if model.window else None,
        "holdout": model.holdout,
        "n_train": model.n_train,
        "calibrator": model.calibrator.to_dict() if model.calibrator else None,
        "calibration": model.curves.get("calibration"),
        "gains": model.curves.get("gains"),
        "importance": importance_shares(promoted_booster) if promoted_booster is not None else None,
    }


def dump_model(model: TrainedModel) -> bytes:
    booster = model.booster.model_to_string() if model.booster is not None else None
    return json.dumps(model_metadata(model) | {"booster": booster}, allow_nan=True).encode("utf-8")


def load_model(data: bytes) -> TrainedModel:
    """Rebuild a model; refuses bundles of another version, another feature list, or damaged ones."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"model bundle is not a JSON document: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != BUNDLE_VERSION:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise BundleError(f"model bundle version {version!r}, this espd reads {BUNDLE_VERSION}")
    if doc.get("features") != list(FEATURE_COLUMNS):
        raise BundleError("model bundle was trained on a different feature list; retrain it")
    try:
        return _rebuild(doc)
    except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
        raise BundleError(f"model bundle is damaged: {type(exc).__name__}: {exc}") from exc


def _rebuild(doc: dict[str, Any]) -> TrainedModel:
    calibrator = Calibrator(**doc["calibrator"]) if doc["calibrator"] else None
    booster = lgb.Booster(model_str=doc["booster"]) if doc["booster"] else None
    return TrainedModel(
        spec=ModelSpec(**doc["spec"]),
        kind=doc["kind"],
        reason=doc["reason"],
        booster=booster,
        calibrator=calibrator,
        holdout=doc["holdout"],
        window=tuple(doc["window"]) if doc["window"] else None,
        n_train=doc["n_train"],
        curves={name: doc[name] for name in ("calibration", "gains") if doc.get(name)},
    )
