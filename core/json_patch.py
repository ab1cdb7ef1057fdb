"""JSON Patch (RFC 6902) over JSON Pointers (RFC 6901), applied to a copy of a JSON document.

`apply_patch(document, operations, may_change)` returns the patched copy. A patch that is not a
list of well-formed operations raises MalformedPatch (a 400); an operation on a member that
`may_change` refuses raises InvalidData naming it; a pointer that names nothing, or an index
out of range, raises InvalidData; a failed `test` raises Conflict. Members an operation does not
define are ignored, as RFC 6902 says. The whole patch applies or
nothing does (the document itself is never modified).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

from core.errors import Conflict, DomainError, InvalidData

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
NEEDS_VALUE = ("add", "replace", "test")
NEEDS_FROM = ("move", "copy")
ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]{0,8})$")
MAX_OPERATIONS = 100


class MalformedPatch(DomainError):
    """Not a JSON Patch document: `errors` maps the operation (`/0/op`) to its messages."""

    code = "malformed_patch"


def pointer_tokens(pointer) -> list[str]:
    """The reference tokens of a JSON Pointer ("" is the whole document); ValueError when it is not one."""
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise ValueError("A JSON Pointer is empty or starts with /.")
    tokens = pointer.split("/")[1:]
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise ValueError("In a JSON Pointer ~ is followed by 0 or 1.")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def same(a, b) -> bool:
    """JSON equality: numbers by value, but a boolean is no number; objects without order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _missing(pointer: str) -> InvalidData:
    return InvalidData("A path of the patch names nothing in the resource.", {pointer: ["No such member or index."]})


def _index(token: str, size: int, pointer: str, appending: bool = False) -> int:
    if appending and token == "-":
        return size
    if not ARRAY_INDEX.fullmatch(token) or int(token) > size or (int(token) == size and not appending):
        raise _missing(pointer)
    return int(token)


def _get(document, tokens: list[str], pointer: str):
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), pointer)]
        else:
            raise _missing(pointer)
    return node


def _add(document, tokens: list[str], value, pointer: str):
    if not tokens:
        return value
    parent = _get(document, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), pointer, appending=True), value)
    else:
        raise _missing(pointer)
    return document


def _remove(document, tokens: list[str], pointer: str):
    if not tokens:
        raise InvalidData("A patch cannot remove the whole resource.", {pointer: ["Not removable."]})
    parent = _get(document, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent), pointer))
    raise _missing(pointer)


def check(operations) -> list[tuple[int, dict, list[str], list[str] | None]]:
    """Each operation with its path's and `from`'s tokens; MalformedPatch listing every fault."""
    if not isinstance(operations, list) or not operations:
        raise MalformedPatch("Send a JSON Patch: a non-empty array of operations (RFC 6902).")
    if len(operations) > MAX_OPERATIONS:
        raise MalformedPatch(f"A patch has at most {MAX_OPERATIONS} operations.")
    errors: dict[str, list[str]] = {}
    checked = []
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict):
            errors[f"/{number}"] = ["An operation is an object."]
            continue
        op = operation.get("op")
        if op not in OPERATIONS:
            errors[f"/{number}/op"] = [f"One of {', '.join(OPERATIONS)}."]
            continue
        if op in NEEDS_VALUE and "value" not in operation:
            errors[f"/{number}/value"] = ["Required."]
        try:
            path = pointer_tokens(operation.get("path"))
        except ValueError as exc:
            errors[f"/{number}/path"] = [str(exc)]
            continue
        source = None
        if op in NEEDS_FROM:
            try:
                source = pointer_tokens(operation.get("from"))
            except ValueError as exc:
                errors[f"/{number}/from"] = [str(exc)]
                continue
            if op == "move" and path[: len(source)] == source and len(path) > len(source):
                errors[f"/{number}/from"] = ["A member cannot be moved into itself."]
        checked.append((number, operation, path, source))
    if errors:
        raise MalformedPatch("The JSON Patch is malformed; see the issues.", errors)
    return checked


def apply_patch(document, operations, may_change: Callable[[list[str]], bool] = lambda tokens: True):
    """The document with `operations` applied, in order. `may_change(tokens)` says whether an
    operation may write at a path (`test` only reads, and may name any path)."""
    checked = check(operations)
    refused = {
        operation[key]: ["This member may not be changed."]
        for _, operation, path, source in checked
        for key, tokens in (("path", path), ("from", source if operation["op"] == "move" else None))
        if tokens is not None and operation["op"] != "test" and not may_change(tokens)
    }
    if refused:
        raise InvalidData("The patch changes members that may not change; see the issues.", refused)
    result = copy.deepcopy(document)
    for _, operation, path, source in checked:
        op, pointer = operation["op"], operation["path"]
        if op == "test":
            if not same(_get(result, path, pointer), operation["value"]):
                raise Conflict("A test operation of the patch failed: the resource is not as the patch expects.")
        elif op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]), pointer)
        elif op == "remove":
            _remove(result, path, pointer)
        elif op == "replace":
            _get(result, path, pointer)  # it must exist
            if path:
                _remove(result, path, pointer)
            result = _add(result, path, copy.deepcopy(operation["value"]), pointer)
        elif op == "move":
            assert source is not None  # check() reads `from` for every move and copy
            value = _remove(result, source, operation["from"])
            result = _add(result, path, value, pointer)
        elif op == "copy":
            assert source is not None
            result = _add(result, path, copy.deepcopy(_get(result, source, operation["from"])), pointer)
    return result
