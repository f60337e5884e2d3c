"""Metrics: what the daemon records shows up in the exposition, and no label can carry a customer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sync.daemon import record_cycle_metrics
from sync.metrics import Metrics
from sync.pipeline import CycleReport
from sync.push import PushReport

ALLOWED_LABELS = {"connector", "status", "stream", "outcome", "stage", "output", "metric", "le"}


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text (as a scraper would) into {(sample name, sorted labels): value}."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_recorded_values_appear_in_the_exposition() -> None:
    metrics = Metrics()
    metrics.count_request("klaviyo", 200)
    metrics.count_request("klaviyo", 200)
    metrics.count_request("klaviyo", 429)
    metrics.count_request("brevo", "timeout")
    metrics.add_rate_limit_wait("klaviyo", 1.5)
    metrics.add_rate_limit_wait("klaviyo", 0.25)
    metrics.count_records("shopify", "orders", "pulled", 250)
    metrics.count_records("shopify", "orders", "skipped")
    metrics.count_records("mailchimp", "members", "parked", 2)
    metrics.mark_success("klaviyo", "pull", when=1_700_000_000.0)
    metrics.set_model_quality("churn_probability", "auc", 0.81)

    samples = _samples(metrics)
    assert samples[("espd_requests_total", (("connector", "klaviyo"), ("status", "200")))] == 2
    assert samples[("espd_requests_total", (("connector", "klaviyo"), ("status", "429")))] == 1
    assert samples[("espd_requests_total", (("connector", "brevo"), ("status", "timeout")))] == 1
    assert samples[("espd_rate_limit_wait_seconds_total", (("connector", "klaviyo"),))] == 1.75
    orders = (("connector", "shopify"), ("outcome", "pulled"), ("stream", "orders"))
    assert samples[("espd_records_total", orders)] == 250
    skipped = (("connector", "shopify"), ("outcome", "skipped"), ("stream", "orders"))
    assert samples[("espd_records_total", skipped)] == 1
    parked = (("connector", "mailchimp"), ("outcome", "parked"), ("stream", "members"))
    assert samples[("espd_records_total", parked)] == 2
    last = (("connector", "klaviyo"), ("stage", "pull"))
    assert samples[("espd_last_success_timestamp_seconds", last)] == 1_700_000_000.0
    assert samples[("espd_model_quality", (("metric", "auc"), ("output", "churn_probability")))] == 0.81


def test_a_cycle_is_timed_flagged_while_running_and_counted_by_outcome() -> None:
    metrics = Metrics()
    with metrics.cycle():
        assert _samples(metrics)[("espd_cycle_in_progress", ())] == 1
    with pytest.raises(RuntimeError, match="push failed"), metrics.cycle():
        raise RuntimeError("push failed")

    samples = _samples(metrics)
    assert samples[("espd_cycle_in_progress", ())] == 0
    assert samples[("espd_cycles_total", (("outcome", "ok"),))] == 1
    assert samples[("espd_cycles_total", (("outcome", "failed"),))] == 1
    assert samples[("espd_cycle_duration_seconds_count", ())] == 2
    assert samples[("espd_cycle_duration_seconds_bucket", (("le", "1.0"),))] == 2


def test_metrics_live_in_their_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.count_request("klaviyo", 200)
    assert ("espd_requests_total", (("connector", "klaviyo"), ("status", "200"))) not in _samples(second)
    assert REGISTRY.get_sample_value("espd_requests_total", {"connector": "klaviyo", "status": "200"}) is None


def test_only_names_are_used_as_labels() -> None:
    metrics = Metrics()
    metrics.count_records("brevo", "contacts", "pushed")
    metrics.mark_success("brevo", "push")
    metrics.set_model_quality("clv_365", "mae", 12.0)
    with metrics.cycle():
        metrics.count_request("brevo", 201)
    labels = {name for (_, pairs) in _samples(metrics) for name, _ in pairs}
    assert labels <= ALLOWED_LABELS


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (lambda m: m.count_request("alice@example.com", 200), "connector='alice@example.com'"),
        (lambda m: m.count_records("shopify", "cus_7362514", "pulled"), "stream='cus_7362514'"),
        (lambda m: m.count_records("klaviyo", "profiles", "deleted"), "outcome 'deleted'"),
        (lambda m: m.count_records("klaviyo", "profiles", "pulled", -1), "cannot be negative"),
        (lambda m: m.count_request("klaviyo", "pk_Live_AbCdEf"), "status='pk_Live_AbCdEf'"),
        (lambda m: m.count_request("klaviyo", 999), "status='999'"),
        (lambda m: m.add_rate_limit_wait("klaviyo", -2.0), "cannot be negative"),
        (lambda m: m.mark_success("klaviyo", "lunch"), "stage 'lunch'"),
        (lambda m: m.set_model_quality("churn", "AUC ROC", 0.5), "metric='AUC ROC'"),
    ],
)
def test_labels_that_could_carry_a_customer_or_a_secret_are_refused(
    record: Callable[[Metrics], None], problem: str
) -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        record(metrics)
    assert not any(name == "espd_requests_total" for name, _ in _samples(metrics))


def test_a_cycles_consent_withholdings_and_resets_are_counted_per_destination() -> None:
    metrics = Metrics()
    report = CycleReport(run_id=1, started_at=datetime(2026, 11, 1, tzinfo=UTC))
    report.pushes = [PushReport("klaviyo", pushed=5, withheld=3, cleared=2)]
    record_cycle_metrics(metrics, report)
    samples = _samples(metrics)
    for outcome, count in (("pushed", 5), ("withheld", 3), ("cleared", 2)):
        labels = (("connector", "klaviyo"), ("outcome", outcome), ("stream", "fields"))
        assert samples[("espd_records_total", labels)] == count, outcome
