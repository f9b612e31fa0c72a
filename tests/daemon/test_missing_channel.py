"""A scenario naming a channel the daemon's ``[channels]`` lacks: a reload is refused saying which channel,
in which configuration file, and the table to add (the start says the same: tests/daemon/test_run.py)."""

from __future__ import annotations

from types import SimpleNamespace

from kairos._config import load_config
from kairos._reload import AuditLog, Reloader
from tests.daemon.support import write_config
from tests.daemon.test_run import SEQ

WHATSAPP = 'scenario chat\n  when balance where amount < 10\n  then whatsapp "offer.topup"\nend\n'


def test_a_reload_naming_an_unconfigured_channel_is_refused_with_the_channel_the_file_and_the_table_to_add(
        tmp_path):
    path = write_config(tmp_path, SEQ, channels=("sms",))
    config = load_config(path)
    (tmp_path / "scenarios" / "chat.kairos").write_text(WHATSAPP)
    reloader = Reloader(SimpleNamespace(config=config), AuditLog(tmp_path / "audit.jsonl"),  # type: ignore[arg-type]
                        poll_s=1, config_path=path)
    result = reloader.reload("test")
    assert (False, 1) == (result.ok, reloader.refused)
    error = result.error or ""
    assert error.startswith(f"{tmp_path}/scenarios/chat.kairos:3:8: error: channel 'whatsapp' is not configured: "
                            f"{path} has no [channels.whatsapp] table (it has: sms)\n")
    assert error.endswith(f"A scenario sends on 'whatsapp', which {path} does not configure; add to it:\n\n"
                          "[channels.whatsapp]\n"
                          'plugin = "file"   # or the plugin your channel team registered '
                          "(call, file, kafka, popup, sms are installed)\n"
                          'path = "whatsapp.jsonl"')


def test_a_mistyped_channel_keeps_its_did_you_mean(tmp_path):
    path = write_config(tmp_path, SEQ.replace("then sms", "then smss"), channels=("sms",))
    reloader = Reloader(SimpleNamespace(config=load_config(path)), AuditLog(tmp_path / "audit.jsonl"),  # type: ignore[arg-type]
                        poll_s=1, config_path=path)
    error = reloader.reload("test").error or ""
    assert f"error: channel 'smss' is not configured: {path} has no [channels.smss] table; did you mean 'sms'?\n" \
        in error
