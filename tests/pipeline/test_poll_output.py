"""What poll_new_data hands on: never a silent cut of its warnings."""

from crypto_ml.pipeline.steps import MAX_XCOM_WARNINGS, _first_warnings


def test_warnings_past_the_xcom_cap_are_counted_not_dropped():
    lines = _first_warnings([f"w{i}" for i in range(MAX_XCOM_WARNINGS + 7)])
    assert lines[:MAX_XCOM_WARNINGS] == [f"w{i}" for i in range(MAX_XCOM_WARNINGS)]
    assert lines[-1] == "... and 7 more warnings: see this task's log"
    assert _first_warnings(["a", "b"]) == ["a", "b"]
