"""Haystack metadata filters as SQL over the chunk table, so a filter never loads every chunk."""

from __future__ import annotations

import json
from typing import Any

from haystack.errors import FilterError


class NotTranslatable(Exception):
    """A filter SQL cannot express with Haystack's semantics; the store then filters in Python."""


_COMPARISONS = {"==": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def filter_to_sql(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """
    Returns a WHERE clause and its parameters for `filters` (Haystack's filter syntax).

    Follows Haystack's in-memory semantics: a document without the field is equal to None and
    unequal to anything else, and is never greater or smaller than a value. Ordering comparisons on
    text, and values that are lists or dates, raise NotTranslatable.
    """
    if "operator" not in filters:
        raise FilterError("A filter needs an 'operator'.")
    if "conditions" in filters:
        return _logical(filters)
    return _comparison(filters)


def _logical(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    operator = filters["operator"]
    parts = [filter_to_sql(condition) for condition in filters["conditions"]]
    params = [value for _, values in parts for value in values]
    clauses = [f"({clause})" for clause, _ in parts]
    if operator == "AND":
        return (" AND ".join(clauses) or "1"), params
    if operator == "OR":
        return (" OR ".join(clauses) or "0"), params
    if operator == "NOT":
        # Haystack: NOT (a AND b), i.e. true unless every condition holds.
        return f"NOT ({' AND '.join(clauses) or '1'})", params
    raise FilterError(f"Unknown logical operator {operator!r}.")


def _field(name: str) -> str:
    if name == "id":
        return "id"
    if name == "content":
        return "content"
    if name.startswith("meta."):
        path = name[len("meta.") :]
        if not path or any(character in path for character in "'\"[]$"):
            raise NotTranslatable(name)
        return f"json_extract(meta, '$.{path}')"
    raise NotTranslatable(name)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _comparison(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    if "field" not in filters or "value" not in filters:
        raise FilterError("A comparison needs 'field', 'operator' and 'value'.")
    operator, value = filters["operator"], filters["value"]
    column = _field(filters["field"])
    if operator in ("in", "not in"):
        if not isinstance(value, list):
            raise FilterError(f"Filter value of {operator!r} must be a list.")
        if not all(_scalar(item) and item is not None for item in value):
            raise NotTranslatable(filters)
        if not value:
            return ("0" if operator == "in" else "1"), []
        marks = ", ".join("?" for _ in value)
        # COALESCE keeps every clause true or false, never NULL, so NOT works as in Python.
        if operator == "in":
            return f"COALESCE({column} IN ({marks}), 0)", [_param(item) for item in value]
        return f"COALESCE({column} NOT IN ({marks}), 1)", [_param(item) for item in value]
    if operator not in _COMPARISONS:
        raise FilterError(f"Unknown comparison operator {operator!r}.")
    if not _scalar(value):
        raise NotTranslatable(filters)
    if operator in ("==", "!="):
        if value is None:
            return f"{column} IS {'NOT ' if operator == '!=' else ''}NULL", []
        # IS / IS NOT are never NULL: a missing field is simply unequal.
        return f"{column} IS {'NOT ' if operator == '!=' else ''}?", [_param(value)]
    if value is None or isinstance(value, (bool, str)):
        # Haystack compares text as dates, and refuses None and booleans here: let it decide.
        raise NotTranslatable(filters)
    return f"COALESCE({column} {_COMPARISONS[operator]} ?, 0)", [value]


def _param(value: Any) -> Any:
    # json_extract gives JSON true/false as 1/0; compare booleans that way.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value
