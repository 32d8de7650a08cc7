from hypothesis import given
from hypothesis import strategies as st

from lag_exporter.lag import partition_lag


def test_plain_lag_is_log_end_minus_committed() -> None:
    assert partition_lag(committed=40, log_start=0, log_end=100) == (60, 0)


def test_no_committed_offset_has_no_lag_rather_than_minus_one() -> None:
    assert partition_lag(None, 0, 100) == (None, 0)
    assert partition_lag(-1, 0, 100) == (None, 0)


def test_unknown_log_end_has_no_lag() -> None:
    assert partition_lag(5, 0, None) == (None, 0)


def test_commit_read_after_newer_messages_is_caught_up_not_negative() -> None:
    assert partition_lag(committed=120, log_start=0, log_end=100) == (0, 0)


def test_committed_below_log_start_counts_only_what_exists_and_reports_the_loss() -> None:
    assert partition_lag(committed=10, log_start=50, log_end=80) == (30, 40)


def test_empty_partition_after_retention_is_caught_up() -> None:
    assert partition_lag(committed=100, log_start=100, log_end=100) == (0, 0)


offsets = st.integers(min_value=0, max_value=2**62)


@given(committed=offsets, start=offsets, extra=offsets)
def test_lag_is_never_negative_and_never_exceeds_what_is_in_the_log(
    committed: int, start: int, extra: int
) -> None:
    end = start + extra
    lag, lost = partition_lag(committed, start, end)
    assert lag is not None
    assert 0 <= lag <= end - start
    assert lost >= 0
    # Lag plus loss account for every message the group has not consumed.
    assert lag + lost == max(0, end - committed)
