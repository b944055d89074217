"""The options flow's calls section: phone book, block and allow lists (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip import phonebook
from custom_components.kpn_voip.const import (
    CONF_ALLOW,
    CONF_BLOCK,
    CONF_BLOCK_ANONYMOUS,
    CONF_KEEPALIVE,
    CONF_PHONE_BOOK,
    CONF_PHONE_BOOK_UPLOAD,
    CONF_PROXY_HOST,
    CONF_PROXY_PORT,
    SECTION_CALLS,
)
from custom_components.kpn_voip.kpn_line import policy
from custom_components.kpn_voip.kpn_line.policy import CallPolicy

from .conftest import INTEGRATION, Line

VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jan Jansen\r\nTEL:06 1234 5678\r\nEND:VCARD\r\n"
UPLOAD_ID = "6f1c1a8e-2c3b-4f3a-9d5e-0a1b2c3d4e5f"  # file ids are UUIDs
GONE_ID = "00000000-0000-4000-8000-000000000000"
LINE = {CONF_PROXY_HOST: "voip1-ext.kpn.net", CONF_PROXY_PORT: 5060, CONF_KEEPALIVE: 15}


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's config folder, in a temporary directory."""
    hass.config.config_dir = str(tmp_path)
    return tmp_path


async def _submit(
    hass: HomeAssistant, entry: MockConfigEntry, calls: dict[str, Any]
) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    submitted = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {**LINE, SECTION_CALLS: calls}
        )
    )
    # A stored change schedules the entry's reload: let it finish inside the test (a
    # reload still running at teardown failed it with InvalidStateError under load).
    await hass.async_block_till_done()
    return submitted


@pytest.fixture
def entry(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_setup_entry: Any
) -> MockConfigEntry:
    """The line, added; its set-up after a save is a mock (the flow is what is tested)."""
    mock_config_entry.add_to_hass(hass)
    return mock_config_entry


async def test_lists_normalised_and_stored(
    hass: HomeAssistant, entry: MockConfigEntry, config_dir: Path
) -> None:
    """Numbers and prefixes as typed -> the form a caller ID has; shown again as text."""
    result = await _submit(
        hass,
        entry,
        {
            CONF_BLOCK: "0900*\n020-123 4567, 0900*",
            CONF_ALLOW: "06 1234 5678",
            CONF_BLOCK_ANONYMOUS: True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        **LINE,
        "allowed_sources": [],
        CONF_BLOCK: ["+31900*", "+31201234567"],
        CONF_ALLOW: ["+31612345678"],
        CONF_BLOCK_ANONYMOUS: True,
        CONF_PHONE_BOOK: None,
    }
    result = await hass.config_entries.options.async_init(entry.entry_id)
    section = next(
        value for key, value in result["data_schema"].schema.items() if key == SECTION_CALLS
    )
    suggested = {
        str(key): key.description["suggested_value"]
        for key in section.schema.schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested[CONF_BLOCK] == "+31900*, +31201234567"
    assert suggested[CONF_BLOCK_ANONYMOUS] is True


@pytest.mark.parametrize(
    ("field", "text", "code", "position"),
    [
        (CONF_BLOCK, "0900*, not a number", policy.INVALID_ENTRY, "2"),
        (CONF_ALLOW, "*", policy.INVALID_ENTRY, "1"),
        (
            CONF_BLOCK,
            ",".join(f"+3120{n:07d}" for n in range(policy.MAX_ENTRIES + 1)),
            policy.TOO_MANY_ENTRIES,
            str(policy.MAX_ENTRIES + 1),
        ),
    ],
)
async def test_bad_list(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    config_dir: Path,
    field: str,
    text: str,
    code: str,
    position: str,
) -> None:
    """A bad entry: the error names its list and its place, on the calls section (the
    frontend shows a section's own error above it, none of its fields'); the section is
    unfolded; nothing is stored."""
    result = await _submit(hass, entry, {field: text})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {SECTION_CALLS: f"{field}_{code}"}
    assert _section_unfolded(result)
    assert result["description_placeholders"]["position"] == position
    assert entry.options == {}


async def test_phone_book_path(
    hass: HomeAssistant, entry: MockConfigEntry, config_dir: Path
) -> None:
    """A .vcf file in the config folder is checked and stored by its relative path."""
    (config_dir / "contacts.vcf").write_text(VCARD, encoding="utf-8")
    result = await _submit(hass, entry, {CONF_PHONE_BOOK: " contacts.vcf "})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PHONE_BOOK] == "contacts.vcf"
    # Emptied: no phone book any more.
    result = await _submit(hass, entry, {CONF_PHONE_BOOK: ""})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PHONE_BOOK] is None


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("missing.vcf", None, phonebook.PHONE_BOOK_NOT_FOUND),
        ("../outside.vcf", VCARD, phonebook.PHONE_BOOK_NOT_FOUND),
        ("broken.vcf", "no vcard here", phonebook.NOT_A_VCARD),
        ("names.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:X\r\nEND:VCARD\r\n", phonebook.NO_NUMBERS),
    ],
)
async def test_bad_phone_book_path(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    config_dir: Path,
    name: str,
    content: str | None,
    code: str,
) -> None:
    """Missing, outside the config folder, or no usable vCard: an error on the field."""
    if content is not None:
        (config_dir / name).resolve().write_text(content, encoding="utf-8")
    result = await _submit(hass, entry, {CONF_PHONE_BOOK: name})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {SECTION_CALLS: code}
    assert _section_unfolded(result)


def _section_unfolded(result: Any) -> bool:
    """The form's calls section is shown unfolded (its error is then next to its fields)."""
    section = next(
        value for key, value in result["data_schema"].schema.items() if key == SECTION_CALLS
    )
    return section.options.get("collapsed") is False


async def test_calls_section_folded_without_an_error(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """The form opens with the calls section folded."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert not _section_unfolded(result)


async def test_first_error_of_the_section_wins(
    hass: HomeAssistant, entry: MockConfigEntry, config_dir: Path
) -> None:
    """Two refused fields: the section shows the first (the block list's), with its place."""
    result = await _submit(hass, entry, {CONF_BLOCK: "0900*, hello", CONF_ALLOW: "abc"})
    assert result["errors"] == {SECTION_CALLS: f"{CONF_BLOCK}_{policy.INVALID_ENTRY}"}
    assert result["description_placeholders"]["position"] == "2"


@contextmanager
def _uploaded(path: Path) -> Iterator[Any]:
    def fake(hass: HomeAssistant, file_id: str) -> Any:
        @contextmanager
        def opened() -> Iterator[Path]:
            if file_id != UPLOAD_ID:
                raise ValueError("File does not exist")
            yield path

        return opened()

    with patch("custom_components.kpn_voip.config_flow.process_uploaded_file", fake):
        yield


async def test_phone_book_upload(
    hass: HomeAssistant, entry: MockConfigEntry, config_dir: Path, tmp_path_factory: Any
) -> None:
    """An uploaded file is checked, kept in the config folder and replaces the path."""
    upload = tmp_path_factory.mktemp("upload") / "export.vcf"
    upload.write_text(VCARD, encoding="utf-8")
    with _uploaded(upload):
        result = await _submit(
            hass, entry, {CONF_PHONE_BOOK_UPLOAD: UPLOAD_ID, CONF_PHONE_BOOK: "ignored.vcf"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        kept = f"kpn_voip/phone_book_{entry.entry_id}.vcf"
        assert entry.options[CONF_PHONE_BOOK] == kept
        assert (config_dir / kept).read_bytes() == VCARD.encode()

        result = await _submit(hass, entry, {CONF_PHONE_BOOK_UPLOAD: GONE_ID})
        assert result["errors"] == {SECTION_CALLS: phonebook.PHONE_BOOK_NOT_FOUND}
        upload.write_text("not a vcard", encoding="utf-8")
        result = await _submit(hass, entry, {CONF_PHONE_BOOK_UPLOAD: UPLOAD_ID})
        assert result["errors"] == {SECTION_CALLS: phonebook.NOT_A_VCARD}
    # The kept copy goes with the line.
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not (config_dir / kept).exists()


async def test_saved_options_reach_the_engine(line: Line) -> None:
    """Saving reloads the line; the new engine gets the lists with `start`."""
    result = await _submit(
        line.hass,
        line.entry,
        {CONF_BLOCK: "0900*", CONF_ALLOW: "0612345678", CONF_BLOCK_ANONYMOUS: True},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await line.hass.async_block_till_done()
    assert line.engine.policies == [
        CallPolicy(block_anonymous=True, block=("+31900*",), allow=("+31612345678",))
    ]


@pytest.mark.parametrize("language", ["strings.json", "translations/nl.json"])
def test_every_error_code_is_translated(language: str) -> None:
    """The codes the calls section can show all have a text (they are not literals)."""
    errors = json.loads((INTEGRATION / language).read_text(encoding="utf-8"))["options"]["error"]
    codes = [f"{field}_{code}" for field in (CONF_BLOCK, CONF_ALLOW) for code in policy.ERROR_CODES]
    for code in (*phonebook.ERROR_CODES, *codes):
        assert code in errors, code


async def test_options_form(
    hass: HomeAssistant, entry: MockConfigEntry, snapshot: SnapshotAssertion
) -> None:
    """The options form as the frontend gets it, with the calls section (snapshot)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    fields = probatio.to_field_list(result["data_schema"], custom_serializer=cv.custom_serializer)
    assert fields == snapshot
