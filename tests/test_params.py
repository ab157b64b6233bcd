"""The parameter-constraint vocabulary of kswgd.params, checked against hand-worked cases."""

from __future__ import annotations

import pytest

from kswgd.params import Boolean, Choice, ConfigError, Floats, Interval, resolve_params


@pytest.mark.parametrize("closed,low_in,high_in", [
    ("both", True, True), ("left", True, False), ("right", False, True), ("neither", False, False)])
def test_interval_ends_belong_to_it_exactly_as_closed_says(closed, low_in, high_in):
    rule = Interval(float, 0, 1, closed=closed)
    assert rule.accepts(0.0) is low_in and rule.accepts(1.0) is high_in
    assert rule.accepts(0.5) and not rule.accepts(-1e-300) and not rule.accepts(1 + 2**-52)


def test_an_integer_interval_refuses_floats_bools_and_non_finite_values():
    rule = Interval(int, 1, None)
    assert rule.accepts(1) and rule.accepts(10**30)
    for value in (0, 1.0, True, float("nan"), "1"):
        assert not rule.accepts(value), value
    assert not Interval(float, None, None).accepts(float("inf"))


def test_choice_compares_type_as_well_as_value():
    assert Choice(1, 2).accepts(2) and not Choice(1, 2).accepts(2.0)
    assert not Choice(1, 2).accepts(True)  # True == 1 in Python, but it is not a choice here
    assert Choice("a", "b").describe() == "one of 'a', 'b'"


def test_resolve_params_converts_command_line_strings_then_checks_them():
    defaults = {"n": 3, "h": 0.1, "flag": False, "loc": (0.0, 0.0), "kind": "a"}
    rules = {"n": Interval(int, 1, None), "h": Interval(float, 0, None, closed="neither"),
             "flag": Boolean(), "loc": Floats(2), "kind": Choice("a", "b")}
    got = resolve_params(defaults, {"n": "4", "h": "0.5", "flag": "yes", "loc": "1,2.5",
                                    "kind": "b"}, "thing", rules)
    assert got == {"n": 4, "h": 0.5, "flag": True, "loc": (1, 2.5), "kind": "b"}
    for key, value, valid in (("n", "0", "an integer >= 1"), ("n", "2.5", "an integer >= 1"),
                              ("h", 0, "a finite number > 0"), ("flag", "maybe", "true or false"),
                              ("loc", "1", "2 finite numbers"), ("kind", "c", "one of 'a', 'b'"),
                              ("n", True, "an integer >= 1")):
        with pytest.raises(ConfigError) as err:
            resolve_params(defaults, {key: value}, "thing", rules)
        assert str(err.value) == f"parameter {key!r} of thing must be {valid}, got {value!r}"
