"""InfluxDB line protocol with second precision: format and parse points."""

from __future__ import annotations

import re
from dataclasses import dataclass

FieldValue = int | float | str | bool


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time: int  # unix seconds


def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _format_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_point(point: Point) -> str:
    """One line, without the newline. Tags are sorted, as InfluxDB recommends."""
    tags = "".join(
        f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(point.tags.items()) if v != ""
    )
    fields = ",".join(f"{_escape_key(k)}={_format_value(v)}" for k, v in point.fields.items())
    return f"{_escape_key(point.measurement)}{tags} {fields} {point.time}"


_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _parse_value(raw: str) -> FieldValue:
    if raw.endswith("i") and raw[:-1].lstrip("-").isdigit():
        return int(raw[:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if raw.startswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return float(raw)


def parse_line(line: str) -> Point:
    """Parse one line written by ``format_point`` (string fields must not hold spaces)."""
    head, fields_text, time_text = _UNESCAPED_SPACE.split(line.strip(), maxsplit=2)
    measurement, *tag_parts = _UNESCAPED_COMMA.split(head)
    tags = {}
    for part in tag_parts:
        key, value = _UNESCAPED_EQUALS.split(part, maxsplit=1)
        tags[_unescape(key)] = _unescape(value)
    fields: dict[str, FieldValue] = {}
    for part in _UNESCAPED_COMMA.split(fields_text):
        key, value = _UNESCAPED_EQUALS.split(part, maxsplit=1)
        fields[_unescape(key)] = _parse_value(value)
    return Point(_unescape(measurement), tags, fields, int(time_text))
