"""Every send the catalogue's stories produce renders in its channel's template: the text a subscriber reads."""

from __future__ import annotations

from kairos.adapters import TemplateCatalog
from kairos._compile import compile_plan
from tests.scenarios.support import EVENTS, SCENARIOS, catalogue_files, replay_story


def test_every_template_the_catalogue_sends_renders_from_a_story_with_no_placeholder_left(tmp_path):
    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    rendered = {}
    for path in sorted(EVENTS.glob("*.events.jsonl")):
        for s in replay_story(path.name.removesuffix(".events.jsonl"), tmp_path):
            rendered[(s["template"], s["channel"])] = catalog.render(s["template"], s["channel"], s["params"])
    assert [key for key, text in rendered.items() if "{" in text or "None" in text] == []
    first_choices = {(s.actions[0].template, s.actions[0].channel)
                     for s in compile_plan(catalogue_files()).scenarios if s.actions}  # set alone sends nothing
    assert set(rendered) == first_choices  # the stories exercise every template the catalogue sends


def test_the_data_add_on_text_shows_whole_gigabytes():
    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    text = catalog.render("offer.data_addon", "sms", {"pct": 91, "pack_gb": 2.0, "cycle": "2026-11"})
    assert text == ("【Kairos移动】尊敬的客户，您2026-11账期套餐内流量已使用91%。"
                    "回复KTJY订购2GB流量加油包，当月有效，立即生效。")


def test_app_and_model_codes_from_the_knowledge_base_read_as_names_in_the_text(tmp_path):
    """The stories pass knowledge-base app ids as parameters; the subscriber reads the app's name."""
    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    texts = {s["template"]: catalog.render(s["template"], s["channel"], s["params"])
             for story in ("handset_review", "video_heavy") for s in replay_story(story, tmp_path)}
    assert "看中华为Mate 70了吗" in texts["offer.handset_contract"]
    assert not [t for t in texts.values() if "_" in t]  # no code like huawei_mate70 or tencent_video


def test_every_app_whose_category_reaches_a_template_has_a_display_name():
    import csv

    catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
    with open(SCENARIOS / "reference" / "kb.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    shown = {"video": "app", "short_video": "app", "music": "app", "handset_review": "model",
             "competitor": "competitor"}
    missing = [(r["app"], shown[r["category"]]) for r in rows
               if r["category"] in shown and r["app"] not in catalog.display[shown[r["category"]]]]
    assert [] == missing
