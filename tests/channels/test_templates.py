"""The template catalogue: Chinese text per channel, rendered at send time; the checks ``kairos check`` will ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.adapters import TemplateCatalog, TemplateError, TemplateUse

EXAMPLE = Path(__file__).resolve().parents[2] / "kairos" / "adapters" / "templates.example.toml"


@pytest.fixture
def catalog() -> TemplateCatalog:
    return TemplateCatalog.load(EXAMPLE)


def test_the_example_catalogue_loads_with_its_template_ids(catalog: TemplateCatalog) -> None:
    assert [
        "care.dropped_calls", "offer.data_addon", "offer.roaming", "offer.topup_bonus", "offer.video_pack"
    ] == catalog.ids()


def test_a_template_renders_per_channel_with_its_parameters(catalog: TemplateCatalog) -> None:
    params = {"pct": 91.5, "pack": "1GB"}
    assert (
        "【Kairos移动】您本月流量已使用91.5%，回复KT1GB即可订购1GB流量加油包，当月有效。",
        "流量已用91.5%，1GB加油包一键订购",
    ) == (catalog.render("offer.data_addon", "sms", params), catalog.render("offer.data_addon", "popup", params))


def test_a_channel_without_its_own_text_uses_the_default(catalog: TemplateCatalog) -> None:
    assert "余额4.8元，充50送10" == catalog.render("offer.topup_bonus", "popup", {"amount": 4.8})


def test_rendering_without_a_needed_parameter_says_which(catalog: TemplateCatalog) -> None:
    with pytest.raises(TemplateError) as err:
        catalog.render("offer.data_addon", "sms", {"pct": 90})
    assert "template 'offer.data_addon' for sms: no value for pack" == str(err.value)


def test_the_placeholders_of_a_template_are_its_parameter_names(catalog: TemplateCatalog) -> None:
    assert frozenset({"pct", "pack"}) == catalog.placeholders("offer.data_addon", "sms")


def test_problems_name_unknown_templates_missing_parameters_and_channels_without_text(catalog: TemplateCatalog) -> None:
    uses = [
        TemplateUse("offer.data_addon", "sms", frozenset({"pct", "pack"})),  # fine
        TemplateUse("offer.data_addon", "sms", frozenset({"pct"})),
        ("offer.data_adon", "sms", ["pct", "pack"]),  # plain tuples are accepted too
        ("offer.roaming", "popup", ["country", "price"]),
        ("offer.nothing_like_it", "sms", []),
    ]
    assert [
        "template 'offer.data_addon' for sms needs parameter 'pack', which the action does not give",
        "unknown template 'offer.data_adon' (did you mean 'offer.data_addon'?)",
        "template 'offer.roaming' has no text for channel 'popup' (it has: sms)",
        "unknown template 'offer.nothing_like_it'",
    ] == catalog.problems(uses)


def test_extra_parameters_are_not_a_problem(catalog: TemplateCatalog) -> None:
    assert [] == catalog.problems([("offer.topup_bonus", "sms", ["amount", "churn_score"])])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("余额{a.b}元", "placeholder {a.b} must be a parameter name"),
        ("余额{}元", "placeholder {} must be a parameter name"),
        ("余额{amount元", "expected '}' before end of string"),
    ],
)
def test_a_placeholder_that_is_not_a_plain_name_is_refused_at_load(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "templates.toml"
    path.write_text(f'[templates."x"]\nsms = "{text}"\n', encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        TemplateCatalog.load(path)
    assert f"{path}: template 'x', channel 'sms': {message}" == str(err.value)


def test_literal_braces_are_written_doubled(tmp_path: Path) -> None:
    catalog = TemplateCatalog({"x": {"sms": "回复{{KT}}订购{pack}"}})
    assert "回复{KT}订购1GB" == catalog.render("x", "sms", {"pack": "1GB"})


def test_a_file_that_is_not_a_catalogue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "templates.toml"
    path.write_text('sms = "x"\n', encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        TemplateCatalog.load(path)
    assert f'{path}: expected a [templates."ID"] table per template' == str(err.value)


def test_display_names_replace_coded_values_and_leave_the_rest():
    catalog = TemplateCatalog({"x": {"sms": "爱在{app}追剧？{pct}%"}},
                              display={"app": {"tencent_video": "腾讯视频"}})
    assert ["爱在腾讯视频追剧？95%", "爱在niche_app追剧？95%"] == [
        catalog.render("x", "sms", {"app": app, "pct": 95}) for app in ("tencent_video", "niche_app")
    ]


def test_a_display_table_that_is_not_value_to_name_is_refused(tmp_path):
    path = tmp_path / "templates.toml"
    path.write_text('[templates.x]\nsms = "{app}"\n[display]\napp = "iqiyi"\n', encoding="utf-8")
    with pytest.raises(TemplateError) as err:
        TemplateCatalog.load(path)
    assert f"{path}: [display.app] must be a table of value = \"name\"" == str(err.value)
