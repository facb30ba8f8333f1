"""The trade-off arithmetic, the guide replica and the widget that shows them."""

from __future__ import annotations

import math

import pytest

from patterns.encrypted_storage import Argon2idParams, Pbkdf2Params, ScryptParams
from patterns.encrypted_storage.cost import (
    PASSWORD_SPACES,
    PUBLISHED_RATES,
    assess,
    attacker_guesses_per_second,
    crack_curve,
    describe_params,
    expected_crack_seconds,
    format_duration,
    measure_unlock_seconds,
    unlock_seconds_on_device,
)
from patterns.encrypted_storage.guide import guide_decrypt, guide_encrypt
from patterns.errors import DecryptionError
from tests.test_encrypted_storage import KEY, PASSWORD


def test_published_rates_are_cited() -> None:
    for rate in PUBLISHED_RATES.values():
        assert "gist.github.com/Chick3nman" in rate.source
        assert rate.date == "October 2022"
        assert rate.gpu == "NVIDIA GeForce RTX 4090"
    assert PUBLISHED_RATES["pbkdf2-sha256"].guesses_per_second == 8_865_700.0
    assert "argon2id" not in PUBLISHED_RATES


def test_scaling_is_linear_in_work() -> None:
    at_600k = attacker_guesses_per_second(Pbkdf2Params(600_000))
    at_100k = attacker_guesses_per_second(Pbkdf2Params(100_000))
    assert at_600k is not None
    assert at_100k is not None
    assert at_600k == pytest.approx(8_865_700 * 999 / 600_000)
    assert at_100k == pytest.approx(6 * at_600k)
    eight = attacker_guesses_per_second(Pbkdf2Params(600_000), gpus=8)
    assert eight == pytest.approx(8 * at_600k)
    scrypt = attacker_guesses_per_second(ScryptParams())
    assert scrypt == pytest.approx(7_126 / 8)
    assert attacker_guesses_per_second(Argon2idParams()) is None
    assert attacker_guesses_per_second(Argon2idParams(), gpus=2, rate_override=50.0) == 100.0


def test_expected_crack_time_is_half_the_space() -> None:
    assert expected_crack_seconds(10, 1.0) == 512.0
    assert math.isclose(expected_crack_seconds(40, 2**20), 2**19)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "under a second"),
        (42, "42.0 seconds"),
        (90, "1.5 minutes"),
        (86400 * 3, "3.0 days"),
        (365.25 * 86400 * 2.5, "2.5 years"),
        (365.25 * 86400 * 3e9, "3.0e+09 years"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_password_spaces_are_ordered_sensibly() -> None:
    bits = {space.label: space.bits for space in PASSWORD_SPACES}
    assert bits["4 random diceware words"] == pytest.approx(51.7)
    assert bits["a password from the top 1 million of a breach list"] < 20


def test_assess_text_and_curve() -> None:
    report = assess(Pbkdf2Params(), PASSWORD_SPACES[3], gpus=1, unlock_seconds=0.25)
    text = report.as_text()
    assert "PBKDF2-HMAC-SHA256, 600,000 iterations" in text
    assert "0.25 s" in text
    assert "October 2022" in text
    assert "years" in text
    no_rate = assess(Argon2idParams(), PASSWORD_SPACES[0])
    assert no_rate.crack_seconds is None
    assert "enter one" in no_rate.as_text()
    assert crack_curve(Argon2idParams(), (20.0, 40.0)) == []
    points = crack_curve(Pbkdf2Params(), (20.0, 40.0))
    assert points[1][1] == pytest.approx(points[0][1] * 2**20)


def test_describe_params() -> None:
    assert describe_params(ScryptParams()) == "scrypt N=2^17, r=8, p=1 (128 MiB)"
    assert describe_params(Argon2idParams()) == "Argon2id 19 MiB, t=2, p=1"


def test_measure_uses_an_injectable_clock() -> None:
    ticks = iter([10.0, 10.5])
    assert (
        measure_unlock_seconds(
            Argon2idParams(memory_kib=64, iterations=1), timer=lambda: next(ticks)
        )
        == 0.5
    )
    assert unlock_seconds_on_device(Pbkdf2Params(600_000), 1_200_000) == 0.5


def test_guide_replica_loses_the_salt() -> None:
    record = guide_encrypt(KEY.reveal(), PASSWORD)
    assert sorted(record) == ["encrypted", "iv"]
    with pytest.raises(DecryptionError, match="no salt"):
        guide_decrypt(record, PASSWORD)
    with pytest.raises(DecryptionError):
        guide_decrypt({**record, "salt": bytes(16)}, PASSWORD)


def test_widget_is_driven_from_code() -> None:
    from patterns.widgets.encrypted_storage import KdfTradeoff, tradeoff_figure

    measured: list[object] = []

    def fake_measure(params: object) -> float:
        measured.append(params)
        return 0.5

    widget = KdfTradeoff(measure=fake_measure)
    assert "600,000 iterations" in widget.summary()
    text = widget.set(kdf="scrypt", log2_n=15, gpus=4)
    assert "scrypt N=2^15" in text
    assert "4 GPU(s)" in text
    assert "0.50 s" in text
    assert widget.iterations.layout.display == "none"
    assert widget.log2_n.layout.display is None
    widget.set(kdf="pbkdf2-sha256")  # cached: no second measurement of the default
    assert measured.count(Pbkdf2Params()) == 1
    assert "your figure" in widget.set(kdf="argon2id", rate=10.0)
    with pytest.raises(ValueError, match="unknown control"):
        widget.set(colour="blue")
    assert bytes(widget._plot.value).startswith(b"\x89PNG")
    figure = tradeoff_figure(Argon2idParams(), gpus=2, rate_override=5.0)
    assert len(figure.axes[0].lines) >= 3
