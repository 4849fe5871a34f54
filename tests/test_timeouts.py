import pytest

from dioptra.timeouts import parse_timeout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400),
        ("90m", 5400),
        ("30s", 30),
        ("2d", 172800),
        ("45", 45),
        ("1H", 3600),
        ("10M", 600),
        ("3D", 259200),
        ("007s", 7),
    ],
)
def test_valid(text: str, seconds: int) -> None:
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize(
    "text", ["abc", "", "0", "0h", "1.5h", "-1", "1w", "h", "1 h", " 1h", "1h ", "1hm", "1h\n"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_timeout(text)
    assert str(info.value) == (
        f"timeout {text!r} is not of the form <digits>[d|h|m|s], e.g. 24h, 90m, 30s"
    )


def test_message_matches_spec() -> None:
    with pytest.raises(
        ValueError,
        match=r"^timeout 'abc' is not of the form <digits>\[d\|h\|m\|s\], "
        r"e\.g\. 24h, 90m, 30s$",
    ):
        parse_timeout("abc")


@pytest.mark.parametrize("text", ["366d", "8761h", "31536001", "3000000d", "9" * 5000 + "s"])
def test_longer_than_a_year_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="longer than the maximum, 365d"):
        parse_timeout(text)


def test_a_year_is_the_maximum() -> None:
    assert parse_timeout("365d") == parse_timeout("31536000") == 365 * 86400
