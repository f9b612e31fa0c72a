"""The quick commands stay quick: `kairos --help`, `--version` and `check` load only what they use.

Each command runs in a fresh interpreter, which then lists the modules it
imported: none of the daemon, of the channels (or their libraries), of numpy
or anyio may be among them (issue 16: these commands start in well under a
second; `python -m bench.startup` measures how long). And `kairos --version`
prints the version an operator quotes in a bug report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kairos import _version

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "scenarios"

#: the daemon, its parts and its configuration: only `kairos run` (and `produce`, `demo`) load them
DAEMON = {"kairos._daemon", "kairos._http", "kairos._units", "kairos._kafka", "kairos._kafka_feedback",
          "kairos._metrics", "kairos._reload", "kairos._snapfiles", "kairos._produce", "kairos._demo",
          "kairos._config"}
#: third-party libraries of the daemon, the channels and the traffic generator
LIBRARIES = {"numpy", "anyio", "uvloop", "aiokafka", "aiosmpplib", "httpx", "h11", "structlog",
             "prometheus_client"}
#: the one module of ``kairos.adapters`` a check reads: the template catalogue (every other is a channel,
#: the outbox, a source or the feedback server)
ADAPTERS_ALLOWED = {"kairos.adapters", "kairos.adapters._templates"}

_PROBE = """\
import json, sys
from kairos._cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as e:  # --help and --version exit through argparse
    status = e.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def _modules_after(argv: list[str]) -> tuple[int, list[str]]:
    """Run the command line ``argv`` in a fresh interpreter: its exit status and every module it imported."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    return result["status"] or 0, result["modules"]


def _heavy(modules: list[str]) -> list[str]:
    """The modules a quick command must not load."""
    return [m for m in modules
            if m in DAEMON or m.split(".")[0] in LIBRARIES
            or (m.startswith("kairos.adapters") and m not in ADAPTERS_ALLOWED)]


@pytest.mark.parametrize("argv", [["check", str(CATALOGUE)], ["check", str(CATALOGUE), "--reference",
                                                                   str(CATALOGUE / "reference")],
                                  ["--help"], ["--version"]],
                         ids=["check the catalogue", "check --reference", "--help", "--version"])
def test_a_quick_command_imports_no_daemon_channel_numpy_or_anyio_module(argv):
    status, modules = _modules_after(argv)
    assert (0, []) == (status, _heavy(modules))


@pytest.mark.parametrize("argv", [["--help"], ["--version"]], ids=["--help", "--version"])
def test_help_and_version_load_neither_the_engine_nor_the_compiler(argv):
    status, modules = _modules_after(argv)
    building = [m for m in modules if m.startswith(("kairos.engine.", "kairos.dsl._compiler", "kairos._compile"))
                and m not in {"kairos.engine._localtime", "kairos.engine._jump_defaults"}]  # --tz and --max-jump
    assert (0, []) == (status, building)


def test_check_of_the_catalogue_builds_its_engine_but_not_the_replay_machinery():
    """`check` builds an engine over stand-in data (a plan that passes also builds); it replays nothing."""
    status, modules = _modules_after(["check", str(CATALOGUE)])
    replaying = {"kairos.engine._replay", "kairos.engine._workers", "kairos.engine._partitioned",
                 "kairos.engine._snapshot"}
    assert (0, True, []) == (status, "kairos.engine._engine" in modules, sorted(replaying & set(modules)))


def test_version_prints_kairos_and_the_installed_version_and_exits_0():
    from importlib import metadata

    done = subprocess.run([sys.executable, "-m", "kairos", "--version"], capture_output=True, text=True)
    assert (0, f"kairos {metadata.version('kairos-cep')}\n", "") == (done.returncode, done.stdout, done.stderr)


def test_version_of_a_checkout_not_installed_is_the_one_in_pyproject(monkeypatch):
    from importlib import metadata

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert f'version = "{_version.version()}"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_version_with_neither_metadata_nor_pyproject_says_unknown(monkeypatch, tmp_path):
    from importlib import metadata

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    monkeypatch.setattr(_version, "PYPROJECT", tmp_path / "pyproject.toml")
    assert "unknown" == _version.version()


def test_the_help_lists_version():
    done = subprocess.run([sys.executable, "-m", "kairos", "--help"], capture_output=True, text=True)
    assert (0, True) == (done.returncode, "--version" in done.stdout)


@pytest.mark.parametrize("package", ["kairos.engine", "kairos.adapters", "kairos.dsl"])
def test_every_public_name_of_a_lazy_package_imports_as_before(package):
    """The packages load a name's module at its first use; `from kairos.engine import X` works for every X."""
    done = subprocess.run([sys.executable, "-c", f"""\
import importlib, json
package = importlib.import_module({package!r})
names = {{}}
exec("from {package} import *", names)
print(json.dumps({{"all": sorted(package.__all__), "star": sorted(n for n in names if n != "__builtins__"),
                  "unlisted": sorted(set(package.__all__) - set(dir(package)))}}))
"""], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert (result["all"], []) == (result["star"], result["unlisted"])


def test_an_unknown_name_of_a_lazy_package_is_an_attribute_error():
    import kairos.engine

    with pytest.raises(AttributeError, match="has no attribute 'Engin'"):
        kairos.engine.Engin  # noqa: B018


def test_a_type_checker_still_refuses_a_name_a_lazy_package_does_not_export(tmp_path):
    """The lazy ``__getattr__`` is hidden from type checkers: a misspelt import is still an error, not ``Any``."""
    probe = tmp_path / "probe.py"
    probe.write_text("from kairos.engine import Engin\nfrom kairos.adapters import Chanel\n"
                     "from kairos.dsl import compile_pathz\nfrom kairos.engine import Engine\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(probe)],
                          capture_output=True, text=True, cwd=ROOT)
    errors = [line.split(": error: ")[1] for line in done.stdout.splitlines() if ": error: " in line]
    assert ['Module "kairos.adapters" has no attribute "Chanel"',
            'Module "kairos.dsl" has no attribute "compile_pathz"',
            'Module "kairos.engine" has no attribute "Engin"'] == sorted(e.split(";")[0] for e in errors)


@pytest.mark.parametrize("command", [[str(Path(sys.executable).parent / "kairos")], [sys.executable, "-m", "kairos"]],
                         ids=["console script", "python -m kairos"])
def test_check_ends_without_teardown_but_says_everything_into_a_pipe(command, tmp_path):
    """`check` leaves by os._exit (no teardown, ~10 ms): what it printed into a pipe must all arrive first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe is block-buffered, as for users
    good = subprocess.run([*command, "check", str(CATALOGUE)], capture_output=True, text=True, env=env)
    assert (good.returncode, good.stderr) == (0, "")
    assert re.fullmatch(r"ok: \d+ scenarios and a policy in \d+ files; templates checked against .+\n", good.stdout)
    bad = tmp_path / "bad.kairos"
    bad.write_text('scenario s\n  when dpi where catgory == "video"\n  then sms "x"\nend\n', encoding="utf-8")
    refused = subprocess.run([*command, "check", str(bad)], capture_output=True, text=True, env=env)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.endswith("                 ^\n") and "did you mean 'category'?" in refused.stderr


def test_replay_of_one_file_loads_neither_workers_nor_partitions_nor_kafka_nor_the_report(tmp_path):
    """One file replayed in this process: the machinery of --workers, of a partitioned log (aiokafka's
    hash, multiprocessing), of --report and --stats stays unloaded (issue 17: start-up is W1's gap)."""
    scenario = tmp_path / "burst.kairos"
    scenario.write_text('scenario burst\n  when count(dpi where category == "video") >= 2 within 10m\n'
                        '  then sms "offer.video"\nend\n', encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(f'{{"type":"dpi","ts":{1795363200000 + i},"msisdn":"13800000001",'
                              f'"host":"youku.com","category":"video"}}\n' for i in range(3)), encoding="utf-8")
    status, modules = _modules_after(["replay", "--quiet", "--scenarios", str(scenario), "--events", str(events),
                                      "--out", str(tmp_path / "sends.jsonl")])
    unneeded = {"aiokafka", "multiprocessing", "kairos.engine._workers", "kairos.engine._partitioned",
                "kairos.adapters._partitions", "kairos._report", "html"}
    assert (0, []) == (status, sorted(m for m in modules if m in unneeded or m.split(".")[0] in unneeded))
