"""Segment audit: how big each segment is, how that moved since the last run, and who is in it.

Sizes and drift tell a marketer when a segment suddenly empties or balloons (a data problem as often as
a real change). The composition report answers the fairness question: for each attribute the user marks
as sensitive (country, gender, age band ...) it compares the segment's mix with the whole population's.

    representation = share of the value inside the segment / share of the value overall

1.0 is proportional; the report flags a value as "over" or "under" when the ratio leaves
[`low`, `high`] (default 0.8 and 1.25, the four-fifths rule used in disparate-impact checks) and the
chi-square test of "in segment vs not" against the attribute is significant at `alpha` after Holm's
correction over every (segment, attribute) test in the report: a report of 20 segments x 3 attributes
would otherwise flag about three fair segments at 5 %. Small segments are not flagged on the ratio
alone: with ten members any mix looks skewed.

These attributes are only ever read here; the engine never uses them as model or clustering features.
Inputs are one row per customer: the segment columns (any hashable values; booleans for rule segments)
and the sensitive attribute columns. Missing attribute values are reported as "unknown".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from engine._behaviour import require_columns

SIZE_COLUMNS = ("segment_field", "segment", "size", "share")
DRIFT_COLUMNS = (
    "segment_field",
    "segment",
    "size",
    "previous_size",
    "change",
    "change_pct",
    "share",
    "previous_share",
    "share_change_pp",
    "status",
)
COMPOSITION_COLUMNS = (
    "segment_field",
    "segment",
    "attribute",
    "value",
    "count",
    "segment_size",
    "share_in_segment",
    "share_overall",
    "representation",
    "p_value",
    "p_adjusted",
    "flag",
)
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AuditConfig:
    low: float = 0.8
    high: float = 1.25
    alpha: float = 0.01
    psi_epsilon: float = 1e-4  # share floor in the stability index, so an emptied segment stays finite


def segment_sizes(assignments: pd.DataFrame, segment_columns: Sequence[str]) -> pd.DataFrame:
    """Size and share of every segment value, per segment column."""
    require_columns(assignments, segment_columns, "assignments")
    parts = []
    for column in segment_columns:
        counts = _labels(assignments[column]).value_counts(sort=False).sort_index()
        parts.append(
            pd.DataFrame(
                {
                    "segment_field": column,
                    "segment": counts.index.astype(str),
                    "size": counts.to_numpy(dtype="int64"),
                    "share": counts.to_numpy() / max(len(assignments), 1),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SIZE_COLUMNS))


def size_drift(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Current sizes next to the previous run's (both as from `segment_sizes`), incl. new and gone ones."""
    keys = ["segment_field", "segment"]
    prior = previous if previous is not None else pd.DataFrame(columns=list(SIZE_COLUMNS))
    merged = current.merge(prior[[*keys, "size", "share"]], on=keys, how="outer", suffixes=("", "_prev"))
    merged = merged.rename(columns={"size_prev": "previous_size", "share_prev": "previous_share"})
    status = np.where(merged["previous_size"].isna(), "new", np.where(merged["size"].isna(), "gone", "kept"))
    for column in ("size", "previous_size", "share", "previous_share"):
        merged[column] = merged[column].astype(float).fillna(0.0)
    merged["change"] = merged["size"] - merged["previous_size"]
    base = merged["previous_size"].where(merged["previous_size"] > 0)
    merged["change_pct"] = 100.0 * merged["change"] / base
    merged["share_change_pp"] = 100.0 * (merged["share"] - merged["previous_share"])
    merged["status"] = status if previous is not None else "new"
    return merged.sort_values(keys, kind="stable").reset_index(drop=True).loc[:, list(DRIFT_COLUMNS)]


def stability_index(drift: pd.DataFrame, config: AuditConfig | None = None) -> pd.DataFrame:
    """Population stability index per segment column: sum((p - q) * ln(p / q)) over its segments.

    Rule of thumb: below 0.1 stable, 0.1 to 0.25 a shift worth a look, above 0.25 a different population.
    """
    eps = (config or AuditConfig()).psi_epsilon
    p = drift["share"].clip(lower=eps)
    q = drift["previous_share"].clip(lower=eps)
    terms = (p - q) * np.log(p / q)
    out = terms.groupby(drift["segment_field"]).sum().rename("psi")
    return out.reset_index()


def composition(
    assignments: pd.DataFrame,
    segment_columns: Sequence[str],
    sensitive_columns: Sequence[str],
    config: AuditConfig | None = None,
) -> pd.DataFrame:
    """Each segment's mix over each sensitive attribute against the population's, with flags."""
    cfg = config or AuditConfig()
    require_columns(assignments, [*segment_columns, *sensitive_columns], "assignments")
    parts = [
        _composition_of(_labels(assignments[seg]), _labels(assignments[attr]), seg, attr)
        for seg in segment_columns
        for attr in sensitive_columns
    ]
    if not parts:
        return pd.DataFrame(columns=list(COMPOSITION_COLUMNS))
    report = pd.concat(parts, ignore_index=True)
    tests = report.drop_duplicates(["segment_field", "segment", "attribute"])
    keys = ["segment_field", "segment", "attribute"]
    adjusted = pd.Series(_holm(tests["p_value"].to_numpy()), index=pd.MultiIndex.from_frame(tests[keys]))
    report["p_adjusted"] = adjusted.reindex(pd.MultiIndex.from_frame(report[keys])).to_numpy()
    skewed = report["p_adjusted"] < cfg.alpha
    report["flag"] = np.select(
        [skewed & (report["representation"] > cfg.high), skewed & (report["representation"] < cfg.low)],
        ["over", "under"],
        default="",
    )
    return report.loc[:, list(COMPOSITION_COLUMNS)]


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    stepped = np.maximum.accumulate(p_values[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _labels(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna(UNKNOWN)


def _composition_of(segments: pd.Series, attribute: pd.Series, seg_name: str, attr_name: str) -> pd.DataFrame:
    table = pd.crosstab(segments, attribute)
    overall = table.sum(axis=0) / max(table.to_numpy().sum(), 1)
    sizes = table.sum(axis=1)
    long = table.stack().rename("count").reset_index()
    long.columns = ["segment", "value", "count"]
    long["segment_size"] = long["segment"].map(sizes).to_numpy()
    long["share_in_segment"] = long["count"] / long["segment_size"]
    long["share_overall"] = long["value"].map(overall).to_numpy()
    long["representation"] = long["share_in_segment"] / long["share_overall"]
    p_values = {segment: _p_in_vs_out(table, segment) for segment in table.index}
    long["p_value"] = long["segment"].map(p_values).to_numpy()
    return long.assign(segment_field=seg_name, attribute=attr_name)


def _p_in_vs_out(table: pd.DataFrame, segment: object) -> float:
    """Chi-square test of independence between membership of `segment` and the attribute."""
    inside = table.loc[segment].to_numpy()
    outside = table.drop(index=segment).sum(axis=0).to_numpy()
    observed = np.vstack([inside, outside])
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2 or (observed.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(observed, correction=False).pvalue)
