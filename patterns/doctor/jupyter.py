"""The Jupyter side: the widgets front end and the kernel the notebooks run in.

Both fail in ways a participant cannot read (sliders shown as text, ``ModuleNotFoundError``
in the first cell), so each check names the install command that fixes it. Jupyter's own
modules are imported only when a check runs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import patterns
from patterns.doctor.findings import Finding, Status
from patterns.doctor.packages import VersionOf, installed_version

__all__ = ["WIDGETS_EXTENSION", "check_kernel", "check_widgets"]

WIDGETS_EXTENSION: Final = Path("@jupyter-widgets") / "jupyterlab-manager"


def check_widgets(
    search_paths: Sequence[str] | None = None, *, version_of: VersionOf = installed_version
) -> Finding:
    """ipywidgets needs its JupyterLab front end (jupyterlab_widgets), or sliders show as
    text such as ``IntSlider(value=3)`` and nothing reacts."""
    name = "widgets front end"
    frontend = version_of("jupyterlab_widgets")
    widgets = version_of("ipywidgets")
    pin = f"jupyterlab_widgets=={frontend}" if frontend else "jupyterlab_widgets"
    fix = f"python -m pip install {pin}, then restart JupyterLab and reload the page"
    if widgets is None or frontend is None:
        gone = "ipywidgets" if widgets is None else "jupyterlab_widgets"
        return Finding(name, Status.PROBLEM, f"{gone} is not installed", fix)
    if search_paths is None:
        from jupyter_core.paths import jupyter_path

        search_paths = jupyter_path("labextensions")
    for folder in search_paths:
        if (Path(folder) / WIDGETS_EXTENSION / "package.json").is_file():
            return Finding(
                name, Status.OK, f"jupyterlab_widgets {frontend} for ipywidgets {widgets}"
            )
    return Finding(
        name,
        Status.PROBLEM,
        f"jupyterlab_widgets {frontend} is installed but JupyterLab cannot find its extension "
        f"{WIDGETS_EXTENSION.as_posix()} (looked in {len(search_paths)} folders)",
        f"python -m pip install --force-reinstall {pin}, then restart JupyterLab",
    )


def _kernel_python(argv: Sequence[str]) -> str:
    """The interpreter a kernel spec starts, resolved the way jupyter_client does."""
    first = argv[0]
    major, minor = sys.version_info[:2]
    if first in {"python", f"python{major}", f"python{major}.{minor}"}:
        return sys.executable
    return first


def check_kernel(name: str = "python3", *, in_kernel: bool = False) -> Finding:
    """The notebooks' kernel exists and its Python imports ``patterns``."""
    label = "kernel"
    install = f"python -m ipykernel install --user --name {name}"
    if in_kernel:
        detail = f"this notebook's kernel imports patterns {patterns.__version__}"
        return Finding(label, Status.OK, detail)
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return Finding(label, Status.PROBLEM, f"no kernel named {name}", install)
    python = _kernel_python(spec.argv)
    probe = "import ipykernel, patterns; print(patterns.__version__)"
    try:
        result = subprocess.run(  # noqa: S603 - the kernel's own interpreter, fixed arguments
            [python, "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = f"{name} cannot start {python} ({type(error).__name__})"
        return Finding(label, Status.PROBLEM, reason, install)
    if result.returncode != 0:
        reason = f"{name} runs {python}, which cannot import ipykernel and patterns"
        return Finding(label, Status.PROBLEM, reason, f"{install}  (from this environment)")
    return Finding(label, Status.OK, f"{name} imports patterns {result.stdout.strip()}")
