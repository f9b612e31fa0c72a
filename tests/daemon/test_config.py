"""The daemon's configuration: the documented example validates, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos._config import ConfigError, KafkaSourceConfig, load_config
from kairos.adapters import KafkaChannel

EXAMPLE = Path(__file__).resolve().parents[2] / "kairos.example.toml"


def test_the_commented_example_configuration_is_valid():
    config = load_config(EXAMPLE)
    assert ["events"] == [s.name for s in config.sources]
    assert {"sms", "popup"} == set(config.channels)


def test_the_examples_commented_kafka_source_is_valid_too(tmp_path):
    text = EXAMPLE.read_text()
    start = text.index("# [[sources]]\n# kind = \"kafka\"")
    kafka = "\n".join(line[2:] for line in text[start:].splitlines()[:8])
    first = text.index("\n[[sources]]\n") + 1
    end = text.index("# [[sources]]")
    path = tmp_path / "kairos.toml"
    path.write_text(text[:first] + kafka + "\n" + text[end:])
    (source,) = load_config(path).sources
    assert isinstance(source, KafkaSourceConfig) and source.partitions == 24


def test_the_examples_commented_kafka_channel_and_kafka_feedback_are_valid_too(tmp_path):
    text = EXAMPLE.read_text()

    def uncommented(header: str) -> str:
        block = text[text.index(f"# {header}"):].split("\n\n")[0]
        return "\n".join(line[2:].split("#")[0] for line in block.splitlines() if line.startswith("# "))

    path = tmp_path / "kairos.toml"
    path.write_text(text + "\n" + uncommented("[channels.decisions]") + "\n" + uncommented("[feedback.kafka]") + "\n")
    config = load_config(path)
    assert "kairos-feedback" == config.feedback.kafka.topic
    channel = KafkaChannel.from_config({k: v for k, v in config.channels["decisions"].items() if k != "plugin"})
    assert ("kafka", "kairos-sends", True) == (config.channels["decisions"]["plugin"], channel.config.topic,
                                               channel.config.idempotence)


def _config(tmp_path, extra: str) -> Path:
    path = tmp_path / "kairos.toml"
    path.write_text('scenarios = "s"\nstate_dir = "st"\n' + extra)
    return path


@pytest.mark.parametrize("extra, message", [
    ('[[sources]]\nkind = "file"\npath = "a"\n[channels.sms]\n[http]\nlisten = "8080"\n',
     "`http.listen` is '8080': write HOST:PORT"),
    ('[[sources]]\nkind = "partitioned"\npath = "l"\npartitions = 2\nowned = [2]\n[channels.sms]\n',
     "`sources[0].owned` names a partition outside 0..1"),
    ('[[sources]]\nkind = "partitioned"\npath = "l"\npartitions = 2\n[[sources]]\nkind = "stdin"\n[channels.sms]\n',
     "must be the only source"),
    ('sources = []\n[channels.sms]\n', "`sources` is empty"),
    ('[[sources]]\nkind = "tcp"\n[channels.sms]\n', "Invalid value 'tcp'"),
    ('[[sources]]\nkind = "file"\npath = "a"\n[channels.sms]\n[feedback.kafka]\nbootstrap_servers = ""\ntopic = "f"\n',
     "`feedback.kafka` needs `bootstrap_servers`"),
    ('[[sources]]\nkind = "file"\npath = "a"\n[channels.sms]\n[feedback.kafka]\nbootstrap_servers = "h:1"\n',
     "`feedback.kafka`: Object missing required field `topic`"),
])
def test_a_mistake_in_the_configuration_is_named(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_config(_config(tmp_path, extra))


def test_a_file_channels_relative_path_is_relative_to_the_configuration_file_like_every_path(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "kairos.toml"
    path.write_text('scenarios = "s"\nstate_dir = "st"\n[[sources]]\nkind = "file"\npath = "../in/events.jsonl"\n'
                    '[channels.sms]\nplugin = "file"\npath = "../out/sms.jsonl"\n'
                    '[channels.popup]\nplugin = "file"\npath = "/abs/popup.jsonl"\n'
                    '[channels.call]\nplugin = "call"\npath = "not/a/file/channel"\n')
    config = load_config(path)
    assert Path(config.channels["sms"]["path"]) == tmp_path / "conf" / ".." / "out" / "sms.jsonl"
    assert config.channels["popup"]["path"] == "/abs/popup.jsonl"
    assert config.channels["call"]["path"] == "not/a/file/channel"  # another plugin's keys are its own
