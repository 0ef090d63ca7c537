"""Invalid tool calls made from a tool's published inputSchema, seeded: each call breaks the schema in one known place
(a wrong type, a missing or an extra field, a number out of range or not finite, a hostile string, deep nesting, a
long list), the rest of the call is valid, and an independent JSON Schema validator confirms the call is invalid."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from pydantic import TypeAdapter, ValidationError

HOSTILE_STRINGS = (
    "", " ", "x" * 100_000, "ünïcødé-名字-🚀", "\x00\x01\x1b[31m\x7f", "line\nbreak", "../../../etc/passwd",
    "/etc/passwd", "..\\..\\windows\\win.ini", "%2e%2e%2f%2e%2e%2fsecret", "file:///etc/passwd", "$(rm -rf ~)",
    "'; DROP TABLE models; --", "\u202eevil", "NaN",
)
NON_FINITE = ("NaN", "nan", "Infinity", "-Infinity", "inf", "-inf")
MUTATIONS = ("unknown_field", "missing_required", "wrong_type", "out_of_range", "non_finite", "hostile_string",
             "deep_nesting", "long_list")


@dataclass
class Case:
    tool: str
    arguments: dict
    field: str  # the name the tool's error must mention
    mutation: str


class ToolFuzzer:
    """Cases for one tool, from its inputSchema; `rng` makes the sequence reproducible."""

    def __init__(self, name: str, schema: dict, rng: random.Random):
        self.name, self.schema, self.rng = name, schema, rng
        self.validator = Draft202012Validator(schema, format_checker=_formats())

    def cases(self, count: int) -> Iterator[Case]:
        made = attempts = 0
        while made < count and attempts < count * 50:
            attempts += 1
            mutation = self.rng.choice(MUTATIONS)
            case = getattr(self, f"_{mutation}")(self._base())
            if case is not None and not self.validator.is_valid(case.arguments):
                made += 1
                yield case

    def invalid(self, arguments: dict) -> bool:
        return not self.validator.is_valid(arguments)

    # --- a valid starting point -----------------------------------------------------------------------------------
    def _base(self) -> dict:
        properties, required = self.schema["properties"], set(self.schema.get("required", []))
        optional = sorted(set(properties) - required)
        chosen = [*required, *self.rng.sample(optional, k=self.rng.randint(0, len(optional)))]
        return {name: self._valid(properties[name]) for name in chosen}

    def _valid(self, schema: dict) -> Any:
        if schema.get("default") is not None:
            return schema["default"]
        schema = self._concrete(schema)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "string":
            return "2024-01-01T00:00:00Z" if schema.get("format") == "date-time" else "a1"
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
            return low if kind == "integer" else float(low)
        if kind == "boolean":
            return True
        if kind == "array":
            return [self._valid(schema["items"])] * max(1, schema.get("minItems", 1))
        return {}

    # --- one broken place per case ----------------------------------------------------------------------------------
    def _unknown_field(self, arguments: dict) -> Case:
        objects = [path[0] for path, schema in self._slots() if len(path) == 1 and self._fields(schema)]
        if objects and self.rng.random() < 0.4:
            owner = self.rng.choice(objects)
            key = self._unknown_key(self._fields(self.schema["properties"][owner]))
            arguments[owner] = {**(arguments.get(owner) or {}), key: self._any_value()}
            return Case(self.name, arguments, key, "unknown_field")
        nested = [path[1] for path, _ in self._slots() if len(path) == 2]  # a setting given at the wrong level
        key = self._unknown_key(self.schema["properties"], nested)
        arguments[key] = self._any_value()
        return Case(self.name, arguments, key, "unknown_field")

    def _missing_required(self, arguments: dict) -> Case | None:
        required = self.schema.get("required", [])
        if not required:
            return None
        name = self.rng.choice(required)
        arguments.pop(name)
        return Case(self.name, arguments, name, "missing_required")

    def _wrong_type(self, arguments: dict) -> Case | None:
        if not self._slots():
            return None
        path, schema = self.rng.choice(self._slots())
        kinds = {b.get("format", b.get("type")) for b in self._branches(schema)} - {None}
        wrong = [v for kind, values in WRONG.items() if kind not in kinds for v in values] if kinds else []
        wrong = [v for v in wrong if not _accepted_by_lax(v, kinds)]
        return self._set(arguments, path, self.rng.choice(wrong), "wrong_type") if wrong else None

    def _out_of_range(self, arguments: dict) -> Case | None:
        slots = [(p, b) for p, s in self._slots() for b in self._branches(s) if b.get("type") in ("integer", "number")
                 and {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(b)]
        if not slots:
            return None
        path, schema = self.rng.choice(slots)
        options = []
        if "minimum" in schema:
            options += [schema["minimum"] - 1, -1e300]
        if "exclusiveMinimum" in schema:
            options += [schema["exclusiveMinimum"], schema["exclusiveMinimum"] - 1000]
        if "maximum" in schema:
            options += [schema["maximum"] + 1, 1e300]
        if "exclusiveMaximum" in schema:
            options += [schema["exclusiveMaximum"]]
        value = self.rng.choice(options)
        value = int(value) if schema["type"] == "integer" and abs(value) < 1e18 else value
        return self._set(arguments, path, value, "out_of_range")

    def _non_finite(self, arguments: dict) -> Case | None:
        slots = [p for p, s in self._slots() if any(b.get("type") in ("integer", "number") for b in self._branches(s))]
        if not slots:
            return None
        return self._set(arguments, self.rng.choice(slots), self.rng.choice(NON_FINITE), "non_finite")

    def _hostile_string(self, arguments: dict) -> Case | None:
        slots = []
        for path, schema in self._slots():
            for branch in self._branches(schema):
                if branch.get("type") == "string" or "enum" in branch:
                    slots.append((path, False))
                elif branch.get("type") == "array" and self._concrete(branch["items"]).get("type") == "string":
                    slots.append((path, True))
        if not slots:
            return None
        path, in_list = self.rng.choice(slots)
        text = self.rng.choice(HOSTILE_STRINGS)
        return self._set(arguments, path, ["a1", text] if in_list else text, "hostile_string")

    def _deep_nesting(self, arguments: dict) -> Case | None:
        if not self._slots():
            return None
        path, _ = self.rng.choice(self._slots())
        value: Any = "bottom"
        for depth in range(self.rng.randint(30, 90)):
            value = [value] if depth % 2 else {"a": value}
        return self._set(arguments, path, value, "deep_nesting")

    def _long_list(self, arguments: dict) -> Case | None:
        slots = [(p, b) for p, s in self._slots() for b in self._branches(s) if b.get("type") == "array"]
        if not slots:
            return None
        path, schema = self.rng.choice(slots)
        if "maxItems" in schema and self.rng.random() < 0.5:
            item = self._valid(schema["items"])
            return self._set(arguments, path, [item] * (schema["maxItems"] + self.rng.choice((1, 10_000))), "long_list")
        return self._set(arguments, path, list(range(self.rng.choice((100, 20_000)))), "long_list")

    # --- helpers ----------------------------------------------------------------------------------------------------
    def _slots(self) -> list[tuple[tuple[str, ...], dict]]:
        """Every top-level argument, and every field of an object-valued argument, as (path, schema)."""
        slots = []
        for name, schema in self.schema["properties"].items():
            slots.append(((name,), schema))
            for field, inner in self._fields(schema).items():
                slots.append(((name, field), inner))
        return slots

    def _fields(self, schema: dict) -> dict:
        return self._concrete(schema).get("properties", {})

    def _set(self, arguments: dict, path: tuple[str, ...], value: Any, mutation: str) -> Case:
        if len(path) == 1:
            arguments[path[0]] = value
        else:
            arguments[path[0]] = {**(arguments.get(path[0]) or {}), path[1]: value}
        return Case(self.name, arguments, path[-1], mutation)

    def _unknown_key(self, taken: dict, near: list[str] | None = None) -> str:
        names = sorted(taken)
        pick = self.rng.choice(names) if names else ""
        variants = [pick[:-1], pick + "s", pick.upper()]
        choices = [*variants, "unknown_option", "x" * 200, "ünknown", "limit", *(near or [])]
        return next(c for c in self.rng.sample(choices, len(choices)) if c and c not in taken)

    def _any_value(self) -> Any:
        return self.rng.choice((1, -1.5, "yes", True, None, [1, 2], {"a": 1}, "NaN", "../../x"))

    def _branches(self, schema: dict) -> list[dict]:
        schema = self._resolve(schema)
        return [self._resolve(b) for b in schema["anyOf"]] if "anyOf" in schema else [schema]

    def _concrete(self, schema: dict) -> dict:
        """The branch that is not null."""
        branches = [b for b in self._branches(schema) if b.get("type") != "null"]
        return branches[0] if branches else {}

    def _resolve(self, schema: dict) -> dict:
        ref = schema.get("$ref")
        return self.schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else schema


# Values of each JSON type that pydantic's lax mode does not turn into another type.
WRONG = {
    "string": ("text", "1h ", "BTC/USDT"),
    "integer": (1.5, -7.25),
    "number": (),
    "boolean": (True, False),
    "array": ([1, 2, 3], [None], [{"a": 1}]),
    "object": ({"a": 1}, {}),
}


def _accepted_by_lax(value: Any, kinds: set) -> bool:
    """pydantic coerces some values across JSON types (a numeric string to a number, 0/1 to a bool, a bool to an
    int): such a value is not a wrong type for those kinds."""
    if isinstance(value, bool):
        return bool(kinds & {"integer", "number"})
    if isinstance(value, float):
        return bool(kinds & {"number", "date-time"})  # a number is a Unix time to pydantic
    if isinstance(value, str):
        return bool(kinds & {"integer", "number", "boolean"}) and _numeric_or_boolean(value)
    return False


def _numeric_or_boolean(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return text.strip().lower() in ("true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0")


def _formats() -> FormatChecker:
    """JSON Schema formats as the server reads them: a date-time is what pydantic parses as one."""
    checker = FormatChecker()
    datetimes = TypeAdapter(datetime)

    @checker.checks("date-time", raises=ValidationError)
    def _date_time(value: object) -> bool:
        datetimes.validate_python(value)
        return True

    return checker
