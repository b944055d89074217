"""Validate the integration's metadata the way hassfest and HACS do.

HA's hassfest lives in the core repository (script/hassfest), not in the
homeassistant wheel, so it cannot run here; these tests apply its rules with
the schemas the installed Home Assistant itself uses (the integration loader,
the services.yaml schema, selectors, the blueprint schema, automation config
validation) plus the rules hassfest adds on top (key order, translations of
every service field, icons referring to translation keys, placeholders).
"""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant import loader
from homeassistant.components.blueprint import models as blueprint_models
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    selector,
    service as service_helper,
    template as template_helper,
    translation,
)
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import DOMAIN

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "kpn_voip"
BLUEPRINT = ROOT / "blueprints" / "automation" / "kpn_voip" / "notify_incoming_call.yaml"
LANGUAGES = ("en", "nl")
PLACEHOLDER_RE = re.compile(r"\{([a-z0-9_]+)\}")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, data


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(_json(INTEGRATION / "manifest.json"))


@pytest.fixture(scope="module")
def strings() -> dict[str, Any]:
    return dict(_json(INTEGRATION / "strings.json"))


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml_util.load_yaml_dict(str(INTEGRATION / "services.yaml")))


# -- manifest.json (hassfest manifest + HACS integration rules) -----------------------


def test_manifest_keys_and_order(manifest: dict[str, Any]) -> None:
    """hassfest: domain, name first, then alphabetical; HACS: its required keys."""
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    for key in ("domain", "name", "codeowners", "documentation", "issue_tracker", "version"):
        assert key in manifest, f"HACS requires {key!r} in manifest.json"
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["iot_class"] in {
        "assumed_state",
        "calculated",
        "cloud_polling",
        "cloud_push",
        "local_polling",
        "local_push",
    }
    assert manifest["integration_type"] in {
        "device",
        "entity",
        "hardware",
        "helper",
        "hub",
        "service",
        "system",
        "virtual",
    }
    assert isinstance(manifest["codeowners"], list)
    for url_key in ("documentation", "issue_tracker"):
        assert manifest[url_key].startswith("https://"), url_key
    assert manifest.get("config_flow") is True
    assert (INTEGRATION / "config_flow.py").is_file()


# hassfest's requirements format rules (script/hassfest/requirements.py).
_HASSFEST_PACKAGE_RE = re.compile(r"^(?:--.+\s)?([-_,\.\w\d\[\]]+)(==|>=|<=|~=|!=|<|>|===)*(.*)$")


def test_manifest_requires_our_pjsua2_wheels(manifest: dict[str, Any]) -> None:
    """HA installs pjsua2 itself: our pinned distribution, where a wheel exists.

    hassfest: no space, the package pattern, pinned with ==. The marker keeps
    HA from trying where scripts/build-wheels builds nothing (another Python or
    CPU): there the integration loads and raises its pjsua2 repair instead
    (docs/installation.md). The pin is the version the build script makes.
    """
    from packaging.requirements import Requirement

    for req in manifest["requirements"]:
        assert " " not in req
        match = _HASSFEST_PACKAGE_RE.match(req)
        assert match
        assert match.group(2) == "=="
    (parsed,) = [
        Requirement(req)
        for req in manifest["requirements"]
        if Requirement(req).name == "kpn-voip-pjsua2"
    ]
    build = (ROOT / "scripts" / "build-wheels").read_text(encoding="utf-8")
    (version,) = re.findall(r"^DIST_VERSION=(\S+)$", build, re.MULTILINE)
    assert str(parsed.specifier) == f"=={version}"
    assert parsed.marker is not None
    for python, machine, wanted in [
        ("3.14", "x86_64", True),
        ("3.14", "aarch64", True),
        ("3.14", "armv7l", False),
        ("3.15", "x86_64", False),
    ]:
        env = {"python_version": python, "platform_machine": machine}
        assert parsed.marker.evaluate(env) is wanted, env


async def test_manifest_loads_in_home_assistant(hass: HomeAssistant) -> None:
    """HA's own loader accepts it: valid version, known dependencies, a config flow."""
    integration = await loader.async_get_integration(hass, "kpn_voip")
    assert not integration.is_built_in
    assert integration.version is not None
    assert integration.version == AwesomeVersion(integration.manifest["version"])
    assert integration.config_flow
    for dependency in integration.dependencies + integration.after_dependencies:
        await loader.async_get_integration(hass, dependency)
    # Domain must not shadow a built-in integration (hassfest warning).
    builtin = Path(loader.__file__).parent / "components" / "kpn_voip"
    assert not builtin.exists()


# -- strings.json and translations ----------------------------------------------------


def test_en_json_is_strings_json(strings: dict[str, Any]) -> None:
    """A custom integration ships translations/en.json = strings.json (HA loads only these)."""
    assert _json(INTEGRATION / "translations" / "en.json") == strings


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_has_every_key_with_same_placeholders(
    strings: dict[str, Any], language: str
) -> None:
    base = dict(_flatten(strings))
    other = dict(_flatten(_json(INTEGRATION / "translations" / f"{language}.json")))
    assert sorted(set(base) - set(other)) == [], f"missing in {language}.json"
    assert sorted(set(other) - set(base)) == [], f"not in strings.json, only in {language}.json"
    for key, text in base.items():
        assert set(PLACEHOLDER_RE.findall(text)) == set(PLACEHOLDER_RE.findall(other[key])), (
            f"{language}.json {key}: placeholders differ"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_values_follow_hassfest_rules(language: str) -> None:
    data = _json(INTEGRATION / "translations" / f"{language}.json")
    for key, text in _flatten(data):
        assert isinstance(text, str), key
        assert text, f"{key} is empty"
        assert text == text.strip(), f"{key} has leading/trailing white space"
        # hassfest: references are resolved only for core integrations, and
        # placeholders must not be quoted; URLs go into placeholders.
        assert "[%key:" not in text, f"{key}: unresolved reference"
        assert not re.search(r"'\{[a-z0-9_]+\}'", text), f"{key}: single-quoted placeholder"
        assert not re.search(r"https?://", text), f"{key}: URL in a translation"
        for part in key.split("."):
            assert re.fullmatch(r"[a-z0-9_-]+", part), f"{key}: key not lower snake case"


def test_services_have_translations_and_valid_schema(
    services: dict[str, Any], strings: dict[str, Any]
) -> None:
    """services.yaml passes HA's schema; every service and field is translated."""
    service_helper._SERVICES_SCHEMA(services)
    assert services, "no services"
    for name, service in services.items():
        text = strings["services"][name]
        assert text["name"], name
        assert text["description"], name
        for field_name, field in (service.get("fields") or {}).items():
            assert text["fields"][field_name]["name"], f"{name}.{field_name}"
            assert text["fields"][field_name]["description"], f"{name}.{field_name}"
            if "selector" in field:
                selector.validate_selector(field["selector"])
        extra = set(text.get("fields", {})) - set(service.get("fields") or {})
        assert not extra, f"translations for unknown fields of {name}: {extra}"
    assert set(strings["services"]) == set(services)


def test_icons_refer_to_translation_keys(strings: dict[str, Any], services: dict[str, Any]) -> None:
    icons = _json(INTEGRATION / "icons.json")
    mdi = re.compile(r"mdi:[a-z0-9-]+")
    for key, icon in _flatten(icons):
        assert mdi.fullmatch(icon), f"{key}: {icon!r} is not an mdi icon"
    for platform, entities in icons.get("entity", {}).items():
        for translation_key, entry in entities.items():
            text = strings["entity"][platform].get(translation_key)
            assert text is not None, f"icon for unknown entity {platform}.{translation_key}"
            for state in entry.get("state", {}):
                assert state in text.get("state", {}), f"{platform}.{translation_key}: {state}"
            for attribute, attr_icons in entry.get("state_attributes", {}).items():
                attr_text = text["state_attributes"][attribute]
                for state in attr_icons.get("state", {}):
                    assert state in attr_text["state"], f"{translation_key}.{attribute}: {state}"
    # hassfest requires an icon for every service.
    assert set(icons.get("services", {})) == set(services)
    for name, entry in icons["services"].items():
        assert "service" in entry, name


def test_every_entity_translation_key_is_used(strings: dict[str, Any]) -> None:
    """Each entity translation key appears as translation_key in the code."""
    code = "\n".join(path.read_text() for path in INTEGRATION.glob("*.py"))
    for platform, entities in strings.get("entity", {}).items():
        assert (INTEGRATION / f"{platform}.py").is_file(), platform
        for translation_key in entities:
            assert re.search(rf"translation_key\s*=\s*[\"']{translation_key}[\"']", code), (
                f"entity.{platform}.{translation_key} is not used"
            )


def test_exception_translations_are_used(strings: dict[str, Any]) -> None:
    """Each exceptions.<key> is raised somewhere (hassfest flags unused ones in core)."""
    code = "\n".join(path.read_text() for path in INTEGRATION.rglob("*.py"))
    for key in strings.get("exceptions", {}):
        assert f'"{key}"' in code or f"'{key}'" in code, f"exceptions.{key} unused"


@pytest.mark.parametrize("language", LANGUAGES)
async def test_exception_messages_reach_home_assistant(
    hass: HomeAssistant, strings: dict[str, Any], language: str
) -> None:
    """Every exceptions.<key> is an object with a `message` (hassfest's schema): HA reads
    only `exceptions.<key>.message`, a bare string showed the user the raw key
    ("invalid_media") instead of the sentence."""
    for key, value in strings["exceptions"].items():
        assert isinstance(value, dict), f"exceptions.{key} must be {{'message': ...}}"
        assert set(value) == {"message"}, f"exceptions.{key}: {sorted(value)}"
    loaded = await translation.async_get_translations(hass, language, "exceptions", {DOMAIN})
    missing = [
        key
        for key in strings["exceptions"]
        if not loaded.get(f"component.{DOMAIN}.exceptions.{key}.message")
    ]
    assert missing == [], f"{language}: no message for {missing}"


# -- hacs.json ------------------------------------------------------------------------------

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}


def test_hacs_json(manifest: dict[str, Any]) -> None:
    """HACS' hacs.json schema and integration repository layout."""
    hacs = _json(ROOT / "hacs.json")
    assert set(hacs) <= HACS_KEYS, set(hacs) - HACS_KEYS
    assert isinstance(hacs["name"], str)
    assert hacs["name"]
    for flag in ("content_in_root", "zip_release", "hide_default_branch", "render_readme"):
        if flag in hacs:
            assert isinstance(hacs[flag], bool), flag
    countries = hacs.get("country", [])
    countries = [countries] if isinstance(countries, str) else countries
    for country in countries:
        assert re.fullmatch(r"[A-Z]{2}", country), country
    if "homeassistant" in hacs:
        minimum = AwesomeVersion(hacs["homeassistant"])
        assert minimum.valid
        # The version we test against must satisfy it.
        assert AwesomeVersion(HA_VERSION) >= minimum
    # content_in_root false: exactly one integration under custom_components/.
    assert hacs.get("content_in_root", False) is False
    integrations = [p for p in (ROOT / "custom_components").iterdir() if p.is_dir()]
    integrations = [p for p in integrations if not p.name.startswith(("_", "."))]
    assert [p.name for p in integrations] == [manifest["domain"]]
    if hacs.get("render_readme"):
        assert (ROOT / "README.md").is_file()


# -- blueprint ------------------------------------------------------------------------------


@pytest.fixture
def blueprint() -> blueprint_models.Blueprint:
    data = yaml_util.load_yaml_dict(str(BLUEPRINT))
    return blueprint_models.Blueprint(
        data, expected_domain="automation", path=BLUEPRINT.name, schema=BLUEPRINT_SCHEMA
    )


def test_blueprint_schema(blueprint: blueprint_models.Blueprint) -> None:
    assert blueprint.domain == "automation"
    assert set(blueprint.inputs) == {"call_event", "notify_device", "only_numbers", "title"}
    # Blueprints are imported by URL: it must point at this file.
    assert blueprint.metadata["source_url"].endswith("/".join(BLUEPRINT.relative_to(ROOT).parts))
    for name, spec in blueprint.inputs.items():
        selector.validate_selector(spec["selector"])
        assert spec.get("name"), name


async def _substituted(
    hass: HomeAssistant, blueprint: blueprint_models.Blueprint, only_numbers: str
) -> dict[str, Any]:
    entry = MockConfigEntry(domain="mobile_app")
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mobile_app", "phone")}, name="Phone"
    )
    inputs = blueprint_models.BlueprintInputs(
        blueprint,
        {
            "use_blueprint": {
                "path": BLUEPRINT.name,
                "input": {
                    "call_event": "event.demo_line_call",
                    "notify_device": device.id,
                    "only_numbers": only_numbers,
                },
            }
        },
    )
    inputs.validate()
    config: dict[str, Any] = inputs.async_substitute()
    return config


async def test_blueprint_substitutes_to_a_valid_automation(
    hass: HomeAssistant, blueprint: blueprint_models.Blueprint
) -> None:
    from homeassistant.components.automation.config import async_validate_config_item

    config = await _substituted(hass, blueprint, "")
    validated = await async_validate_config_item(hass, "kpn_notify", config)
    assert validated is not None
    assert validated.validation_error is None, validated.validation_error


def _render_variables(
    hass: HomeAssistant, config: dict[str, Any], attributes: dict[str, Any]
) -> dict[str, Any]:
    """Render the automation's variables in order, as the trigger would."""
    to_state = type("State", (), {"attributes": attributes})()
    values: dict[str, Any] = {"trigger": {"to_state": to_state}}
    for name, value in config["variables"].items():
        if isinstance(value, str) and "{" in value:
            template = template_helper.Template(value, hass)
            values[name] = template.async_render(values)
        else:
            values[name] = value
    for condition in config["conditions"]:
        rendered = template_helper.Template(condition["value_template"], hass).async_render(values)
        values.setdefault("_conditions", []).append(bool(rendered))
    return values


@pytest.mark.parametrize(
    ("only_numbers", "attributes", "notify", "message"),
    [
        (
            "",
            {
                "event_type": "incoming_call",
                "number": "+31612345678",
                "national": "0612345678",
                "name": "Jan",
                "anonymous": False,
            },
            True,
            "Jan - 0612345678",
        ),
        (
            "020 123 4567,\n06-12 34 56 78",
            {
                "event_type": "incoming_call",
                "number": "+31612345678",
                "national": "0612345678",
                "name": None,
                "anonymous": False,
            },
            True,
            "0612345678",
        ),
        (
            "0031201234567",
            {
                "event_type": "incoming_call",
                "number": "+31612345678",
                "national": "0612345678",
                "name": "Jan",
                "anonymous": False,
            },
            False,
            None,
        ),
        (
            "",
            {
                "event_type": "incoming_call",
                "number": None,
                "national": None,
                "name": None,
                "anonymous": True,
            },
            True,
            "Hidden number",
        ),
        (
            "+31612345678",
            {
                "event_type": "incoming_call",
                "number": None,
                "national": None,
                "name": None,
                "anonymous": True,
            },
            False,
            None,
        ),
        (
            "",
            {
                "event_type": "missed_call",
                "number": "+31612345678",
                "national": "0612345678",
                "name": "Jan",
                "anonymous": False,
            },
            False,
            None,
        ),
    ],
)
async def test_blueprint_filter_and_message(
    hass: HomeAssistant,
    blueprint: blueprint_models.Blueprint,
    only_numbers: str,
    attributes: dict[str, Any],
    notify: bool,
    message: str | None,
) -> None:
    config = await _substituted(hass, blueprint, only_numbers)
    values = _render_variables(hass, config, attributes)
    assert all(values["_conditions"]) is notify
    if message is not None:
        rendered = template_helper.Template(config["actions"][0]["message"], hass)
        assert rendered.async_render(values) == message


def test_config_flow_uses_only_translated_keys(strings: dict[str, Any]) -> None:
    """Every step, error and abort reason the flows use has a translation.

    (HA's own test suite checks this at run time; here statically: literals
    in config_flow.py plus the error codes of the number/user name/settings checks.)
    """
    from custom_components.kpn_voip.kpn_line.numbers import ERROR_CODES
    from custom_components.kpn_voip.kpn_line.profile import K6_DISPLAY_NAME_MAX_LENGTH
    from custom_components.kpn_voip.kpn_line.settings import (
        INVALID_DISPLAY_NAME,
        INVALID_VALUE,
        USERNAME_ERROR_CODES,
    )

    code = (INTEGRATION / "config_flow.py").read_text()
    steps = set(re.findall(r'(?<!next_)step_id="([a-z_]+)"', code))  # shown steps
    errors = set(re.findall(r'errors\[[^\]]+\] = "([a-z_]+)"', code))
    aborts = set(re.findall(r'reason="([a-z_]+)"', code))
    assert steps, "no step ids found: the check would test nothing"
    assert errors
    config, options = strings["config"], strings["options"]
    for step in steps:
        # A progress step (the login test) has its text under progress.<action>.
        assert step in config["step"] or step in options["step"] or step in config["progress"], (
            f"step {step}"
        )
    for error in errors | set(ERROR_CODES) | {*USERNAME_ERROR_CODES, INVALID_VALUE}:
        assert error in config["error"] or error in options["error"], f"error {error}"
    # The display name's error states the limit (K6) in every language.
    for language in LANGUAGES:
        text = _json(INTEGRATION / "translations" / f"{language}.json")["config"]["error"]
        assert str(K6_DISPLAY_NAME_MAX_LENGTH) in text[INVALID_DISPLAY_NAME], language
    # Aborts HA raises for us (_abort_if_unique_id_configured, reauth/reconfigure).
    for reason in aborts | {"already_configured", "reauth_successful", "reconfigure_successful"}:
        assert reason in config["abort"], f"abort {reason}"
    # The fields of each form are named in `data` (the form labels).
    for field in ("number", "username", "password", "display_name"):
        assert field in config["step"]["user"]["data"], field
    for field in ("proxy_host", "proxy_port"):
        assert field in config["step"]["user"]["sections"]["advanced"]["data"], field


# Markdown emphasis: "*text*" or "_text_" outside `code` (the UI renders
# translations and service descriptions as Markdown: "*31*" became italic 31).
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)[^*_`\n]*?(?<=\S)\1(?![\w*])")


def _outside_code(text: str) -> str:
    return re.sub(r"`[^`]*`", "", text)


# The texts the frontend renders as Markdown: flow step descriptions and field
# descriptions, abort and progress texts, repair issue descriptions.  Form errors,
# entity names and exception messages are plain text, where a backtick shows as
# itself.  Actions' texts are both: Markdown in the action editor, plain text in
# other places that list actions, so they need neither backticks nor emphasis.
_MARKDOWN_KEY = re.compile(
    r"^(config|options|config_subentries\.[a-z0-9_]+)\."
    r"(step\.[a-z0-9_]+\.(sections\.[a-z0-9_]+\.)?(description|data_description\.[a-z0-9_]+)"
    r"|abort\.[a-z0-9_]+|progress\.[a-z0-9_]+)$"
    r"|^issues\.[a-z0-9_]+\.description$"
)


def _is_markdown(key: str) -> bool:
    return _MARKDOWN_KEY.match(key) is not None


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_accidental_markdown_emphasis(language: str) -> None:
    """A literal like *31* is written as `*31*` where the text is Markdown (issue 12)."""
    data = _json(INTEGRATION / "translations" / f"{language}.json")
    for key, text in _flatten(data):
        if _is_markdown(key) or key.startswith("services."):
            assert not _EMPHASIS.search(_outside_code(text)), f"{language}.json {key}: {text!r}"
    assert _EMPHASIS.search("KPN's *31* prefix")  # the check can fail
    assert not _EMPHASIS.search(_outside_code("KPN's `*31*` prefix, 0900*, a * b"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_backticks_in_plain_text(language: str) -> None:
    """Form errors and messages are plain text in the UI, actions' texts at least in
    places: a `*31*` there showed its backticks (the dial action's hide_caller_id)."""
    data = _json(INTEGRATION / "translations" / f"{language}.json")
    plain = {key: text for key, text in _flatten(data) if not _is_markdown(key)}
    assert "services.dial.fields.hide_caller_id.description" in plain
    assert "options.error.block_invalid_list_entry" in plain
    assert not _is_markdown("services.dial.fields.hide_caller_id.description")
    assert _is_markdown("config.step.user.data_description.username")
    assert _is_markdown("options.step.init.sections.calls.data_description.block")
    for key, text in plain.items():
        assert "`" not in text, f"{language}.json {key}: {text!r}"
