"""A real plugin distribution: built from a pyproject, installed with pip, found through
its entry point, and its tool used by a run of the ``orra-di`` command in a subprocess.

pip installs it into a directory of its own (``--target``, offline, with the
setuptools of this interpreter), which the subprocess finds on ``PYTHONPATH`` with the
``.dist-info`` pip wrote, as an installed distribution is found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "orra-weather"
version = "1.2.0"
description = "A weather tool for orra-di agents."

[project.entry-points."orra_di.plugins"]
weather = "orra_weather:WeatherPlugin"
broken = "orra_weather:BrokenPlugin"
"""

MODULE = '''\
"""A tiny orra-di plugin."""

from orra_di.plugins import BasePlugin
from orra_di.tool import tool


class WeatherPlugin(BasePlugin):
    name = "weather"
    description = "Tomorrow's weather"
    version = "1.2.0"

    async def init(self, config):
        self.units = config.get_str("units") or "C"

    def tools(self, agent):
        units = self.units

        @tool
        def forecast(city: str) -> str:
            """Tomorrow's weather in a city."""
            return f"forecast: 21{units} and sunny"

        return [forecast]


class BrokenPlugin(BasePlugin):
    name = "broken"
    description = "Fails to start"

    async def init(self, config):
        raise RuntimeError("licence server unreachable")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution, installed by pip into a directory of its own."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "orra-weather"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "orra_weather.py").write_text(MODULE)
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=work,
    )
    assert list(target.glob("orra_weather-1.2.0.dist-info/entry_points.txt"))
    return target


def orra_di(site: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    environ.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]),
        ORRA_STORE__URL="memory://",
        ORRA_TOOLS="[]",
        ORRA_LLM__KIND="test",
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        COLUMNS="200",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", "from orra_di.cli import main; main()", *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_installed_plugins_tool_is_used_by_a_run(site: Path, tmp_path: Path) -> None:
    done = orra_di(
        site,
        tmp_path,
        "ask",
        "--json",
        "Weather in Oslo?",
        ORRA_PLUGINS=json.dumps({"enabled": ["weather"], "config": {"weather": {"units": "F"}}}),
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["answer"]
    # The offline model calls every tool it is offered and quotes their results.
    assert '"forecast": "forecast: 21F and sunny"' in answer


def test_a_plugin_failing_to_start_leaves_the_others_working(site: Path, tmp_path: Path) -> None:
    done = orra_di(
        site, tmp_path, "ask", "--json", "Weather?", ORRA_PLUGINS='["broken", "weather"]'
    )
    assert done.returncode == 0, done.stderr
    assert "forecast: 21C and sunny" in json.loads(done.stdout)["answer"]
    assert "plugin 'broken' failed" in done.stderr
    assert "licence server unreachable" in done.stderr


def test_plugins_list_shows_discovered_enabled_and_status(site: Path, tmp_path: Path) -> None:
    done = orra_di(
        site, tmp_path, "plugins", "list", "--json", ORRA_PLUGINS='["broken", "weather"]'
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["weather"]["status"] == "running"
    assert rows["weather"]["distribution"] == "orra-weather"
    assert rows["weather"]["version"] == "1.2.0"
    assert rows["broken"]["status"] == "failed"
    assert "licence server unreachable" in rows["broken"]["error"]

    nothing_enabled = orra_di(site, tmp_path, "plugins", "list", "--json")
    rows = {row["name"]: row for row in json.loads(nothing_enabled.stdout)}
    assert rows["weather"] == {**rows["weather"], "enabled": False, "status": "not enabled"}

    table = orra_di(site, tmp_path, "plugins", "list", ORRA_PLUGINS='["weather"]')
    assert "weather" in table.stdout
    assert "running" in table.stdout


def test_enabling_a_plugin_that_is_not_installed_names_the_installed_ones(
    site: Path, tmp_path: Path
) -> None:
    done = orra_di(site, tmp_path, "ask", "hi", ORRA_PLUGINS='["wether"]')
    assert done.returncode == 1
    assert "plugin 'wether' is enabled" in done.stderr
    assert "weather" in done.stderr
    assert "Traceback" not in done.stderr
