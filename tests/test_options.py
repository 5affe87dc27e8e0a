from dataclasses import dataclass
from typing import Any, Literal, Optional

import pytest

from letras.core import option
from letras.core import options as opts


@dataclass
class Example:
    size: int = option(8, min=1, help="a size")
    rate: float = option(0.5, min=0.0, max=1.0, max_exclusive=True)
    mode: Literal["a", "b"] = option("a")
    limit: Optional[float] = option(None, min=0.0, min_exclusive=True)
    flag: bool = option(False)
    names: list[str] = option(default_factory=list)
    extra: dict[str, Any] = option(default_factory=dict)


def test_defaults_fill_missing_keys():
    built = opts.build(Example, {})
    assert built == Example()


def test_int_is_accepted_as_float_and_converted():
    built = opts.build(Example, {"rate": 0})
    assert built.rate == 0.0 and isinstance(built.rate, float)


@pytest.mark.parametrize("key, value, message", [
    ("size", "big", "expected an integer, got 'big' (string)"),
    ("size", True, "expected an integer, got True (boolean)"),
    ("size", 0, "must be at least 1, got 0"),
    ("rate", 1.0, "must be less than 1.0, got 1.0"),
    ("mode", "c", "expected one of 'a', 'b', got 'c' (string)"),
    ("limit", 0, "must be greater than 0.0, got 0.0"),
    ("limit", "x", "expected number | null, got 'x' (string)"),
    ("flag", "yes", "expected a boolean, got 'yes' (string)"),
    ("names", "abc", "expected a list, got 'abc' (string)"),
    ("extra", [1], "expected a mapping, got [1] (list)"),
])
def test_bad_values_name_the_key_and_the_problem(key, value, message):
    with pytest.raises(opts.OptionError) as info:
        opts.build(Example, {key: value})
    assert info.value.key == key
    assert str(info.value) == message


def test_optional_accepts_null():
    assert opts.build(Example, {"limit": None}).limit is None


def test_unknown_key_suggests_the_closest():
    with pytest.raises(opts.OptionError) as info:
        opts.build(Example, {"sise": 3})
    assert "unknown key 'sise'" in str(info.value)
    assert "did you mean 'size'?" in str(info.value)


def test_required_option():
    @dataclass
    class Needs:
        path: str = option(help="where")

    with pytest.raises(opts.OptionError, match="required option is missing"):
        opts.build(Needs, {})


def test_post_init_errors_become_option_errors():
    @dataclass
    class Checked:
        low: int = 0
        high: int = 1

        def __post_init__(self):
            if self.low > self.high:
                raise ValueError("low must not exceed high")

    with pytest.raises(opts.OptionError, match="low must not exceed high"):
        opts.build(Checked, {"low": 5})


def test_describe_lists_types_defaults_and_help():
    info = {o.name: o for o in opts.describe(Example)}
    assert info["size"].type == "integer" and info["size"].default == 8 and info["size"].help == "a size"
    assert info["mode"].type == "'a' | 'b'"
    assert info["limit"].type == "number | null"
    assert info["names"].default == []


def test_no_options_class_rejects_any_key():
    assert opts.build(None, {}) is None
    with pytest.raises(opts.OptionError, match="unknown key 'x'"):
        opts.build(None, {"x": 1})
