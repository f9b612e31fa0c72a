"""Channels are found by entry point: Kairos's own, and a third party's plugin.

The plugin is installed with pip and used from a scenario.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import msgspec
import pytest

from kairos import dsl
from kairos.adapters import (
    CallChannel,
    Channel,
    ChannelConfigError,
    ChannelLoadError,
    PopupChannel,
    SmsChannel,
    TemplateCatalog,
    TemplateUse,
    create_channel,
    discover_channels,
)
from kairos.engine import Engine, Send, event_schema, event_union
from kairos.adapters import Outbox, OutboxConfig

HERE = Path(__file__).resolve().parent


def test_kairos_own_channels_are_registered_by_entry_point() -> None:
    found = discover_channels()
    assert {"sms": SmsChannel, "popup": PopupChannel, "call": CallChannel} == {
        k: found[k] for k in ("sms", "popup", "call")
    }


def test_a_channel_is_created_from_its_configuration_mapping() -> None:
    channel = create_channel("popup", {"url": "http://127.0.0.1:1/push", "secret": "k"})
    assert (PopupChannel, "popup", "http://127.0.0.1:1/push") == (type(channel), channel.name, channel.config.url)


def test_an_unknown_configuration_key_is_refused_with_the_channel_name() -> None:
    with pytest.raises(ChannelConfigError) as err:
        create_channel("popup", {"url": "http://x", "secret": "k", "timout_s": 1})
    assert "channel popup: Object contains unknown field `timout_s`" == str(err.value)


def test_an_unknown_channel_name_lists_the_registered_ones() -> None:
    with pytest.raises(ChannelLoadError) as err:
        create_channel("fax", {}, registry={"sms": SmsChannel, "call": CallChannel})
    assert "no channel named 'fax'; registered: call, sms" == str(err.value)


def _install(tmp_path: Path, source: Path, name: str) -> Path:
    """pip-install a package from a copy of ``source`` into its own site directory, as a user would install a plugin."""
    build = tmp_path / f"{name}-src"
    shutil.copytree(source, build)
    site = tmp_path / f"{name}-site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(site), str(build)],
        check=True,
        capture_output=True,
    )
    return site


@pytest.fixture
def on_path() -> Iterator[list[str]]:
    """Directories added to ``sys.path`` by a test, removed afterwards."""
    added: list[str] = []
    yield added
    for entry in added:
        sys.path.remove(entry)
    importlib.invalidate_caches()


@pytest.fixture
def example_plugin(tmp_path_factory: pytest.TempPathFactory, on_path: list[str]) -> type[Channel]:
    """The example plugin (``example_plugin/``), pip-installed and importable."""
    site = _install(tmp_path_factory.mktemp("plugin"), HERE / "example_plugin", "example")
    sys.path.insert(0, str(site))
    on_path.append(str(site))
    importlib.invalidate_caches()
    return discover_channels()["jsonl"]


def test_a_third_party_plugin_is_discovered_by_its_entry_point(example_plugin: type[Channel]) -> None:
    assert ("kairos_example_channel", "JsonlChannel") == (example_plugin.__module__, example_plugin.__name__)


def test_a_plugin_whose_entry_point_is_not_a_channel_is_refused(tmp_path: Path, on_path: list[str]) -> None:
    source = tmp_path / "bad"
    (source / "bad_channel").mkdir(parents=True)
    (source / "bad_channel" / "__init__.py").write_text("class NotAChannel:\n    pass\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "bad-channel"\nversion = "1.0"\n'
        '[project.entry-points."kairos.channels"]\nbad = "bad_channel:NotAChannel"\n'
        "[tool.setuptools]\npackages = [\"bad_channel\"]\n"
    )
    site = _install(tmp_path, source, "bad")
    sys.path.insert(0, str(site))
    on_path.append(str(site))
    importlib.invalidate_caches()
    with pytest.raises(ChannelLoadError) as err:
        discover_channels()
    expected = ("channel 'bad' (bad_channel:NotAChannel, from bad-channel 1.0) "
                "is not a subclass of kairos.adapters.Channel")
    assert expected == str(err.value)


SCENARIO = """
scenario video_heavy_no_pack
  title "Heavy video use without a video pack"
  priority 60
  when count(dpi where category == "video") >= 3 within 10m
  cooldown 60m
  then jsonl "offer.video_pack" with {app: last.app}
end
"""

EVENTS = [
    {"type": "dpi", "ts": 1795399200000 + i * 60_000, "msisdn": m, "host": "v.douyin.com", "app": "抖音",
     "category": "video", "bytes": 10, "duration_s": 5}
    for i in range(3)
    for m in ("13800000001", "13800000002")
]


@pytest.mark.anyio
async def test_a_plugin_channel_is_used_from_a_scenario_end_to_end(
    example_plugin: type[Channel], tmp_path: Path
) -> None:
    """A scenario names the plugin's channel.

    Kairos's checker knows it, the engine decides, the outbox delivers through it.
    """
    channels = discover_channels()
    plan = dsl.compile_sources([("video.kairos", SCENARIO)], event_schema(), frozenset(channels))
    templates = TemplateCatalog({"offer.video_pack": {"default": "看{app}太费流量？视频流量包9元30GB"}})
    uses = [TemplateUse(a.template, a.channel, frozenset(k for k, _ in a.params))
            for s in plan.scenarios for a in s.actions]
    assert [] == templates.problems(uses)

    sends: list[Send] = []
    engine = Engine(plan, sink=sends.append)
    decoder = msgspec.json.Decoder(event_union())
    for event in sorted(EVENTS, key=lambda e: e["ts"]):
        engine.on_event(decoder.decode(msgspec.json.encode(event)))
    engine.finish()

    out = tmp_path / "partner.jsonl"
    plugin = channels["jsonl"].from_config({"path": str(out), "fail_msisdns": ["13800000002"]}, name="jsonl")
    outbox = Outbox(OutboxConfig(directory=str(tmp_path / "ob")), {"jsonl": plugin}, templates=templates)
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        for send in sends:
            outbox.submit(send, priority=60)
        with anyio.fail_after(10):
            stats = await outbox.wait_idle()
        outbox.stop()

    written = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [
        {"id": "video_heavy_no_pack:13800000001:1795399320000", "msisdn": "13800000001",
         "scenario": "video_heavy_no_pack",
         "text": "看抖音太费流量？视频流量包9元30GB", "params": {"app": "抖音"}}
    ] == written
    assert (1, 1) == (stats.delivered, stats.dead_lettered)
