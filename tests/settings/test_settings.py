"""crypto_ml.settings: typed environment getters whose errors name the variable."""

from __future__ import annotations

import pytest

from crypto_ml.settings import env_bool, env_choice, env_float, env_int, env_str, env_url


def test_unset_or_blank_gives_the_default():
    env = {"X": "  "}
    assert env_str("X", "d", environ=env) == "d" and env_int("X", 7, environ=env) == 7
    assert env_bool("MISSING", True, environ=env) is True and env_url("MISSING", environ=env) is None


def test_values_are_parsed():
    env = {"I": " 12 ", "F": "0.5", "B": "off", "C": "TF", "U": "redis://h:6379/0", "S": " a "}
    assert env_int("I", 0, minimum=1, environ=env) == 12 and env_float("F", 0.0, environ=env) == 0.5
    assert (
        env_bool("B", True, environ=env) is False
        and env_choice("C", "none", ("none", "tf"), environ=env) == "tf"
    )
    assert env_url("U", environ=env) == "redis://h:6379/0" and env_str("S", environ=env) == "a"


@pytest.mark.parametrize(
    "getter, raw, message",
    [
        (
            lambda e: env_int("CRYPTO_ML_N", 1, minimum=1, environ=e),
            "0",
            "CRYPTO_ML_N must be an int >= 1, got '0'",
        ),
        (lambda e: env_int("CRYPTO_ML_N", 1, environ=e), "x", "CRYPTO_ML_N must be an int >= 0, got 'x'"),
        (
            lambda e: env_float("CRYPTO_ML_N", 0.0, environ=e),
            "-1",
            "CRYPTO_ML_N must be a number >= 0, got '-1'",
        ),
        (
            lambda e: env_bool("CRYPTO_ML_N", True, environ=e),
            "maybe",
            "CRYPTO_ML_N must be one of 1/0/true/false",
        ),
        (
            lambda e: env_choice("CRYPTO_ML_N", "a", ("a", "b"), environ=e),
            "c",
            "CRYPTO_ML_N must be one of a, b, got 'c'",
        ),
        (lambda e: env_url("CRYPTO_ML_N", environ=e), "localhost:80", "CRYPTO_ML_N must be a URL"),
    ],
)
def test_errors_name_the_variable_and_what_is_valid(getter, raw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        getter({"CRYPTO_ML_N": raw})
