"""sync.storable checks a whole page at once and falls back to record by record: the records kept and
the reasons given are those of checking each record alone, at the limits and just past them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.records import EngagementEvent, Order, OrderLine, Profile
from sync.storable import EARLIEST, FUTURE_SLACK, Minimization, storable

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _event(vendor_id: str, occurred_at: datetime = NOW, url: str | None = None) -> EngagementEvent:
    return EngagementEvent(source="kl", vendor_id=vendor_id, kind="opened", occurred_at=occurred_at, url=url)


def _order(vendor_id: str, quantity: int) -> Order:
    line = OrderLine(vendor_id="1", quantity=quantity, unit_price=1.0)
    return Order(
        source="kl",
        vendor_id=vendor_id,
        ordered_at=NOW,
        updated_at=NOW,
        currency="EUR",
        total=1.0,
        lines=(line,),
    )


def test_values_at_every_limit_are_all_kept() -> None:
    page = [
        _event("v" * 255, url="u" * 2048, occurred_at=EARLIEST),
        _event("late", occurred_at=NOW + FUTURE_SLACK),
        _order("o", 2**31 - 1),
        Profile(source="kl", vendor_id="p", updated_at=NOW, raw={"deep": [[[1.5, None]]]}),
    ]
    result = storable("mixed", page, NOW, Minimization())
    assert result.records == page and result.skipped == []


def test_a_page_keeps_its_good_records_and_names_each_misfit() -> None:
    good = [_event(f"e{i}") for i in range(50)] + [_order("o1", 3)]
    bad = [
        _event("x" * 256),
        _event("old", occurred_at=EARLIEST - timedelta(microseconds=1)),
        _event("ahead", occurred_at=NOW + FUTURE_SLACK + timedelta(seconds=1)),
        _order("big", 2**31),
        Profile(source="kl", vendor_id="nan", updated_at=NOW, raw={"a": {"b": [float("inf")]}}),
    ]
    result = storable("mixed", good[:25] + bad + good[25:], NOW, Minimization())
    assert result.records == good
    assert [(s.vendor_id, s.reason) for s in result.skipped] == [
        ("x" * 128, "vendor_id longer than 255 characters"),
        ("old", f"occurred_at is an implausible date (before {EARLIEST:%Y} or over a year ahead)"),
        ("ahead", f"occurred_at is an implausible date (before {EARLIEST:%Y} or over a year ahead)"),
        ("big", "order line quantity out of the integer range the store holds"),
        ("nan", "raw holds NaN or Infinity, which JSON cannot"),
    ]


def test_text_that_says_nan_is_kept_and_a_number_that_is_nan_is_named() -> None:
    """The fast JSON check sends any text holding "NaN" or "Infinity" to the strict one: words are
    kept, non-finite numbers (beside such words, or nested deep) are named."""
    words = Profile(source="kl", vendor_id="w", updated_at=NOW, raw={"note": "NaN Infinity -Infinity"})
    hidden = Profile(
        source="kl", vendor_id="h", updated_at=NOW, raw={"note": "NaN", "x": [{"y": float("nan")}]}
    )
    surrogate = Profile(source="kl", vendor_id="s", updated_at=NOW, raw={"name": "bad\ud800"})
    result = storable("profiles", [words, hidden, surrogate], NOW, Minimization())
    assert result.records == [words, surrogate]
    assert [(s.vendor_id, s.reason) for s in result.skipped] == [
        ("h", "raw holds NaN or Infinity, which JSON cannot")
    ]
