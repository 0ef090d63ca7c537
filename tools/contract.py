"""Every tool's contract, enforced once for all: arguments a tool does not take are refused (the SDK would drop them,
so a misplaced setting such as a top-level `risk_per_trade` would silently have no effect), at the top level and
inside every settings object, and argument errors name the field and what is accepted."""

import difflib
import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, StringConstraints, ValidationError

from mcp_trader.errors import InputError

# Ids the server made (model, job, run, export, order) and symbols: bounded text, so a path, a control character or a
# megabyte never reaches a lookup.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]  # URL-safe
SymbolText = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9/:._\-]*$")]
SymbolList = Annotated[list[SymbolText], Field(max_length=50)]
CostMargin = Annotated[
    float, Field(ge=0, le=20, description="Take a signal only where its expected move over the horizon is at least "
                                          "(1 + cost_margin) × the round-trip cost (fees, slippage, impact); its size "
                                          "is the share of the move left after costs.")
]
EdgeChoice = Annotated[
    Literal["validated", "implied"],
    Field(description="A model's expected move: validated (default) scales its implied move (P(BUY) − P(SELL)) × "
                      "barrier width by what its validation rows bore out, 0 when they show no skill beyond noise, so "
                      "such a model stays flat; implied trades the implied move as it stands."),
]
MAX_PROBLEMS = 10  # a list of 20,000 wrong items is one mistake, not 20,000 lines


class StrictServer(MCPServer):
    """An MCPServer whose tools publish `additionalProperties: false` and hold to it: unknown arguments and non-finite
    numbers are refused before the tool runs, and pydantic's argument errors read `field.path: problem`."""

    def add_tool(self, fn: Callable[..., Any], name: str | None = None, **options: Any) -> None:
        super().add_tool(fn, name=name, **options)
        tool = self._tool_manager.get_tool(name or fn.__name__)
        tool.parameters = closed(tool.parameters)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            problems = argument_problems(name, tool.parameters, arguments, getattr(tool.fn, "withheld", {}))
            if problems:
                raise ToolError("; ".join(str(problem) for problem in problems))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            if isinstance(error.__cause__, ValidationError):
                raise ToolError(validation_text(name, error.__cause__)) from error.__cause__
            raise


def argument_problems(tool: str, schema: dict, arguments: dict[str, Any],
                      withheld: dict[str, str] | None = None) -> list[InputError]:
    """Every argument, at any depth the schema describes, that the schema does not name, and every non-finite number
    (pydantic lets NaN and infinity, or the strings 'nan' and 'inf', through where no bound stops them). `withheld`:
    arguments a variant of the tool deliberately does not take, with the reason to give."""
    found = [InputError(key, f"is not an argument of {tool}: {reason}", ", ".join(sorted(schema["properties"])))
             for key, reason in (withheld or {}).items() if key in arguments]
    _check_object(schema, schema, {k: v for k, v in arguments.items() if k not in (withheld or {})}, "", tool, found)
    return found


def closed(schema: dict) -> dict:
    """The schema with every object that lists its properties closed to others (a copy; `schema` is unchanged)."""
    schema = json.loads(json.dumps(schema))
    _close(schema)
    return schema


def validation_text(tool: str, error: ValidationError) -> str:
    """A pydantic error as `field.path: problem (got value)`, one per problem, without pydantic's internals."""
    problems = []
    for item in error.errors(include_url=False)[:MAX_PROBLEMS]:
        field = ".".join(str(part) for part in item["loc"]) or tool
        got = "" if item["type"] == "missing" else f" (got {_short(item.get('input'))})"
        problems.append(f"{field}: {item['msg']}{got}")
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _check_object(root: dict, schema: dict, value: Any, path: str, owner: str, found: list[InputError]) -> None:
    properties = _properties(root, schema, value)
    if properties is None:
        return
    for key, item in value.items():
        if key not in properties:
            found.append(_unknown(root, properties, key, path, owner))
        else:
            _check_value(root, properties[key], item, f"{path}{key}", found)


def _check_value(root: dict, schema: dict, value: Any, path: str, found: list[InputError]) -> None:
    if _non_finite(value) and any(b.get("type") in ("number", "integer") for b in _branches(root, schema)):
        found.append(InputError(path, f"must be a finite number, not {value!r}", "a finite number"))
    elif isinstance(value, dict):
        _check_object(root, schema, value, f"{path}.", path, found)
    elif isinstance(value, list):
        items = _resolve(root, schema).get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _check_value(root, items, item, f"{path}[{index}]", found)


def _properties(root: dict, schema: dict, value: Any) -> dict | None:
    """The properties of the object branch of `schema` when `value` is a dict that branch should describe."""
    if not isinstance(value, dict):
        return None
    for branch in _branches(root, schema):
        if "properties" in branch:
            return branch["properties"]
    return None


def _branches(root: dict, schema: dict) -> list[dict]:
    schema = _resolve(root, schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if not alternatives:
        return [schema]
    return [branch for alternative in alternatives for branch in _branches(root, alternative)]


def _resolve(root: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return schema
    return root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})


def _unknown(root: dict, properties: dict, key: str, path: str, owner: str) -> InputError:
    accepted = sorted(properties)
    where = f"an argument of {owner}" if not path else f"a field of {owner}"
    problem = f"is not {where}"
    home = [name for name in accepted if key in (_properties(root, properties[name], {}) or {})]
    if home:
        problem += f"; it is a field of {home[0]} (pass {home[0]}={{{json.dumps(key)}: …}})"
    else:
        nearest = difflib.get_close_matches(key, accepted, n=1)
        if nearest:
            problem += f"; nearest: {nearest[0]}"
    return InputError(f"{path}{_short(key, 80)}", problem, ", ".join(accepted))


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and len(value) < 20:
        try:
            return not math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _close(schema: Any) -> None:
    if isinstance(schema, dict):
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _close(value)
    elif isinstance(schema, list):
        for value in schema:
            _close(value)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
