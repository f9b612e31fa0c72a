"""Every send the catalogue's stories produce renders in its channel's template: the text a subscriber reads."""

from __future__ import annotations

from adapters import TemplateCatalog
from kairos._cli import compile_plan
from tests.scenarios.support import EVENTS, SCENARIOS, catalogue_files, replay_story


def test_every_template_the_catalogue_sends_renders_from_a_story_with_no_placeholder_left(tmp_path):
    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    rendered = {}
    for path in sorted(EVENTS.glob("*.jsonl")):
        for s in replay_story(path.stem, tmp_path):
            rendered[(s["template"], s["channel"])] = catalog.render(s["template"], s["channel"], s["params"])
    assert [key for key, text in rendered.items() if "{" in text or "None" in text] == []
    first_choices = {(s.actions[0].template, s.actions[0].channel) for s in compile_plan(catalogue_files()).scenarios}
    assert set(rendered) == first_choices  # the stories exercise every template the catalogue sends


def test_the_data_add_on_text_shows_whole_gigabytes():
    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    text = catalog.render("offer.data_addon", "sms", {"pct": 91, "pack_gb": 2.0, "cycle": "2026-11"})
    assert text == ("【Kairos移动】尊敬的客户，您2026-11账期套餐内流量已使用91%。"
                    "回复KTJY订购2GB流量加油包，当月有效，立即生效。")
