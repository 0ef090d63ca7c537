"""The README's "Tools and resources" table, and its inference-service tool list, against the registered server.

A tool or resource added, removed or renamed without its README row fails here, and so does a tool argument the
row does not name (in backticks).
"""

import re
from pathlib import Path

import pytest
from mcp import Client

from mcp_trader.config import Settings
from mcp_trader.server import build_server

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"
TICKED = re.compile(r"`([^`]+)`")


def section(title: str) -> str:
    """The README's text under `## title`, up to the next second-level heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def table_rows() -> list[tuple[str, list[str], str]]:
    """(kind, names, description) per row of the tools table: kind 'tool' or 'resource', names as written."""
    rows = []
    for line in section("Tools and resources").splitlines():
        match = re.match(r"\| (tool|resource) (.+?) \| (.*) \|$", line)
        if match:
            kind, names, description = match.groups()
            assert TICKED.sub("", names).strip(" ,") == "", f"row names must each be in backticks: {names!r}"
            rows.append((kind, TICKED.findall(names), description))
    assert rows, "no tool or resource rows found in the README's table"
    return rows


def listed(kind: str) -> list[str]:
    return [name for row_kind, names, _ in table_rows() if row_kind == kind for name in names]


async def published(client: Client) -> tuple[dict[str, dict], set[str]]:
    """Tool name → its input schema, and every resource URI and URI template."""
    tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    uris |= {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    return tools, uris


async def test_the_table_names_every_tool_and_nothing_else(client: Client):
    tools, _ = await published(client)
    names = listed("tool")
    assert len(names) == len(set(names)), f"a tool has two rows: {sorted(n for n in names if names.count(n) > 1)}"
    assert set(names) == set(tools), (
        f"missing from the README: {sorted(set(tools) - set(names))}; "
        f"not registered: {sorted(set(names) - set(tools))}"
    )


async def test_the_table_names_every_resource_and_template_and_nothing_else(client: Client):
    _, uris = await published(client)
    names = listed("resource")
    assert all(name.startswith("trader://") for name in names), f"resource rows give full URIs: {names}"
    assert len(names) == len(set(names)), f"a URI has two rows: {sorted(n for n in names if names.count(n) > 1)}"
    assert set(names) == uris, (
        f"missing from the README: {sorted(uris - set(names))}; not registered: {sorted(set(names) - uris)}"
    )


async def test_every_tool_argument_is_named_in_its_row(client: Client):
    tools, _ = await published(client)
    missing = {}
    for kind, names, description in table_rows():
        if kind != "tool":
            continue
        for name in names:
            arguments = tools.get(name, {}).get("properties", {})
            absent = [arg for arg in arguments if f"`{arg}`" not in description]
            if absent:
                missing[name] = absent
    assert not missing, f"tool arguments the README's row does not name (in backticks): {missing}"


async def test_the_inference_section_lists_the_inference_services_tools_and_resources(tmp_path: Path):
    text = " ".join(section("Deploying the inference service").split())
    tools_sentence = re.search(r"Its tools: (.*?)\.(?:\s|$)", text)
    assert tools_sentence, "the inference section has no 'Its tools: ….' sentence"
    resources_sentence = re.search(r"Its resources are those under (.*?)\.(?:\s|$)", text)
    assert resources_sentence, "the inference section has no 'Its resources are those under …' sentence"

    async with Client(build_server(Settings(home=tmp_path / "home", offline=True), inference=True)) as client:
        tools, uris = await published(client)
    named = set(TICKED.findall(tools_sentence.group(1)))
    assert named == set(tools), (
        f"inference tools missing from the section: {sorted(set(tools) - named)}; "
        f"listed but not served: {sorted(named - set(tools))}"
    )

    prefixes = set(TICKED.findall(resources_sentence.group(1)))
    served = {uri for uri in uris if any(uri == p or uri.startswith(p + "/") for p in prefixes)}
    assert served == uris, f"inference resources outside the listed families: {sorted(uris - served)}"
    families = {p for p in prefixes if any(uri == p or uri.startswith(p + "/") for uri in uris)}
    assert families == prefixes, f"listed but not served by the inference service: {sorted(prefixes - families)}"
