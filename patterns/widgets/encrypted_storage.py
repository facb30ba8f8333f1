"""The KDF trade-off explorer of notebook 02: unlock time here against an attacker's search.

A thin view over :mod:`patterns.encrypted_storage.cost`: the controls pick KDF parameters, a
password space, a number of GPUs and optionally your own per-GPU rate; the summary and the plot
come from :func:`~patterns.encrypted_storage.cost.assess` and
:func:`~patterns.encrypted_storage.cost.crack_curve`. Each parameter set is measured once (one
real derivation with ``cryptography``) and cached. The plot is a PNG in an ``Image`` widget,
not an ``Output`` widget, so nbval compares only the text the notebook prints.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Final

import ipywidgets as widgets
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from patterns.encrypted_storage.cost import (
    PASSWORD_SPACES,
    PasswordSpace,
    Tradeoff,
    assess,
    crack_curve,
    describe_params,
    measure_unlock_seconds,
)
from patterns.encrypted_storage.kdf import (
    Argon2idParams,
    KdfParams,
    Pbkdf2Params,
    ScryptParams,
)

__all__ = ["KdfTradeoff", "tradeoff_figure"]

_BITS: Final = tuple(float(b) for b in range(16, 82, 2))
_YEAR: Final = 365.25 * 86400
_REFERENCES: Final = (("1 day", 86400.0), ("1 year", _YEAR), ("1,000 years", 1000 * _YEAR))


def tradeoff_figure(
    params: KdfParams,
    *,
    gpus: int = 1,
    rate_override: float | None = None,
    marked_space: PasswordSpace | None = None,
) -> Figure:
    """Average crack time against password entropy, for ``params`` and OWASP's defaults."""
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curves = [(params, rate_override, "-")]
    for default in (Pbkdf2Params(), ScryptParams()):
        if default != params:
            curves.append((default, None, ":"))
    for curve_params, override, style in curves:
        points = crack_curve(curve_params, _BITS, gpus=gpus, rate_override=override)
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, [y / _YEAR for y in ys], style, label=describe_params(curve_params))
    for label, seconds in _REFERENCES:
        axes.axhline(seconds / _YEAR, color="grey", linewidth=0.6)
        axes.annotate(label, (_BITS[0], seconds / _YEAR), fontsize=7, color="grey")
    if marked_space is not None:
        axes.axvline(marked_space.bits, color="tab:red", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xlabel("password entropy (bits, randomly chosen)")
    axes.set_ylabel("average time to crack (years)")
    axes.set_title(f"{gpus:,} GPU(s), published RTX 4090 rates unless overridden", fontsize=9)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


class KdfTradeoff:
    """Controls for the KDF and its cost, the password space and the attacker; a live summary
    and plot. ``KdfTradeoff().set(kdf="scrypt", log2_n=17)`` drives it from code."""

    def __init__(self, *, measure: Callable[[KdfParams], float] = measure_unlock_seconds) -> None:
        self._measure = measure
        self._measured: dict[KdfParams, float] = {}
        self._holding = False
        style = {"description_width": "12em"}

        def wide() -> widgets.Layout:
            return widgets.Layout(width="36em")  # one Layout per control: display is per widget

        self.kdf = widgets.Dropdown(
            options=["pbkdf2-sha256", "scrypt", "argon2id"],
            value="pbkdf2-sha256",
            description="KDF",
            style=style,
            layout=wide(),
        )
        self.iterations = widgets.IntSlider(
            value=600_000, min=100_000, max=2_000_000, step=50_000,
            description="PBKDF2 iterations", style=style, layout=wide(),
        )  # fmt: skip
        self.log2_n = widgets.IntSlider(
            value=17, min=14, max=18, description="scrypt log2(N), r=8", style=style, layout=wide()
        )
        self.memory_mib = widgets.IntSlider(
            value=19, min=7, max=256, description="Argon2id memory MiB", style=style, layout=wide()
        )
        self.passes = widgets.IntSlider(
            value=2, min=1, max=10, description="Argon2id passes (t)", style=style, layout=wide()
        )
        self.space = widgets.Dropdown(
            options=[(s.label, i) for i, s in enumerate(PASSWORD_SPACES)],
            value=3,
            description="password",
            style=style,
            layout=wide(),
        )
        self.gpus = widgets.BoundedIntText(
            value=1, min=1, max=1_000_000, description="attacker GPUs", style=style
        )
        self.rate = widgets.FloatText(
            value=0.0, description="your rate (guesses/s/GPU)", style=style
        )
        self._summary = widgets.HTML()
        self._plot = widgets.Image(format="png")
        controls = [self.kdf, self.iterations, self.log2_n, self.memory_mib, self.passes]
        controls += [self.space, self.gpus, self.rate]
        for control in controls:
            control.observe(self._refresh, names="value")
        self.view = widgets.VBox([*controls, self._summary, self._plot])
        self._refresh()

    @property
    def params(self) -> KdfParams:
        """The KDF parameters the controls describe."""
        if self.kdf.value == "scrypt":
            return ScryptParams(n=2**self.log2_n.value, r=8, p=1)
        if self.kdf.value == "argon2id":
            return Argon2idParams(
                memory_kib=self.memory_mib.value * 1024, iterations=self.passes.value
            )
        return Pbkdf2Params(iterations=self.iterations.value)

    @property
    def tradeoff(self) -> Tradeoff:
        params = self.params
        if params not in self._measured:
            self._measured[params] = self._measure(params)
        return assess(
            params,
            PASSWORD_SPACES[self.space.value],
            gpus=self.gpus.value,
            rate_override=self.rate.value or None,
            unlock_seconds=self._measured[params],
        )

    def summary(self) -> str:
        return self.tradeoff.as_text()

    def set(self, **values: Any) -> str:
        """Set controls by name (``kdf``, ``iterations``, ``log2_n``, ``memory_mib``,
        ``passes``, ``space``, ``gpus``, ``rate``); return the new summary."""
        self._holding = True  # one refresh (one measurement, one plot) for all the changes
        try:
            for name, value in values.items():
                control = getattr(self, name, None)
                if not isinstance(control, widgets.ValueWidget):
                    raise ValueError(f"unknown control {name!r}")
                control.value = value
        finally:
            self._holding = False
        self._refresh()
        return self.summary()

    def _refresh(self, _change: object = None) -> None:
        if self._holding:
            return
        kind = self.kdf.value
        for control, shown in (
            (self.iterations, kind == "pbkdf2-sha256"),
            (self.log2_n, kind == "scrypt"),
            (self.memory_mib, kind == "argon2id"),
            (self.passes, kind == "argon2id"),
        ):
            control.layout.display = None if shown else "none"
        tradeoff = self.tradeoff
        self._summary.value = f"<pre>{tradeoff.as_text()}</pre>"
        figure = tradeoff_figure(
            tradeoff.params,
            gpus=tradeoff.gpus,
            rate_override=self.rate.value or None,
            marked_space=tradeoff.space,
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        self._plot.value = buffer.getvalue()

    def _ipython_display_(self) -> None:
        display(self.view)  # type: ignore[no-untyped-call]
