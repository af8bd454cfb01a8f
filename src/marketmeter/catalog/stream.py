"""Reading a catalog YAML (or JSON) document entry by entry, never all of it at once.

``catalog_entries`` walks LibYAML's event stream (PyYAML's ``CSafeLoader``, the pure-Python
one where LibYAML is missing) and builds one top-level list entry at a time as plain Python
values, the same values ``yaml.safe_load`` would build (tags resolved by the safe loader's
resolver and constructed by its constructors, anchors and aliases, ``<<`` merge keys), so a
200,000-entry file costs the memory of one entry plus what the caller keeps. It yields
``(section, -1, None)`` where a list section starts, ``(section, index, value)`` for each of
its entries and ``(section, None, value)`` for a section whose value is not a list (the caller
reports it).

Bounds (``catalog.loader``'s, docs/catalog.md): a value nested deeper than ``max_depth`` stops
the read (``TooDeep``); the caller checks each entry's values (count, NUL) on its own. A
collection with an explicit tag other than a plain mapping or list (``!!set``, ``!!omap``,
``!!python/...``) is a YAML error, and so is an alias to the whole document or a whole section
(neither is ever held).
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import IO, Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = ["LOADER", "NotAMapping", "Reading", "TooDeep", "catalog_entries"]

# libyaml's parser when PyYAML has it (ten times faster on a large file), the same safe types
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MERGE = object()  # a ``<<`` key
_WHOLE = object()  # the anchor of the document or a whole section (never held)


class TooDeep(Exception):
    """The document nests deeper than the bound."""


class NotAMapping(Exception):
    """The document is not a mapping of sections."""


class _Collection:
    """A mapping or list being built, with its pending key (mappings)."""

    __slots__ = ("depth", "key", "key_set", "merges", "value")

    def __init__(self, value: Any, depth: int) -> None:
        self.value = value
        self.depth = depth
        self.key: Any = None
        self.key_set = False
        self.merges: list[Any] = []


def catalog_entries(
    stream: str | bytes | IO[str] | IO[bytes],
    sections: Container[str],
    max_depth: int,
    reading: Reading | None = None,
) -> Iterator[tuple[str, int | None, Any]]:
    """The entries of the catalog document ``stream`` (see the module's docstring): the lists
    of ``sections`` entry by entry, any other key's value whole; after each, ``reading`` tells
    what building it met. Raises ``yaml.YAMLError`` for a document that is not YAML,
    ``NotAMapping``, ``TooDeep``."""
    loader: Any = LOADER(stream)
    try:
        yield from _entries(loader, sections, max_depth, reading)
    finally:
        loader.dispose()


def _entries(
    loader: Any, sections: Container[str], max_depth: int, reading: Reading | None
) -> Iterator[tuple[str, int | None, Any]]:
    anchors: dict[str, Any] = {}
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return
    first = loader.get_event()  # DocumentStart
    event = loader.get_event()
    if isinstance(event, yaml.ScalarEvent) and _scalar(loader, event) is None:
        pass  # an empty document: no sections
    elif not isinstance(event, yaml.MappingStartEvent):
        raise NotAMapping
    else:
        _remember(anchors, event, _WHOLE)
        while not loader.check_event(yaml.MappingEndEvent):
            key = str(_value(loader, loader.get_event(), anchors, 2, max_depth))
            event = loader.get_event()
            if (
                key in sections
                and isinstance(event, yaml.SequenceStartEvent)
                and event.tag in (None, "!", _SEQ)
            ):
                _remember(anchors, event, _WHOLE)
                yield key, -1, None
                index = 0
                while not loader.check_event(yaml.SequenceEndEvent):
                    event = loader.get_event()
                    yield key, index, _value(loader, event, anchors, 3, max_depth, reading)
                    index += 1
                loader.get_event()
            else:
                yield key, None, _value(loader, event, anchors, 2, max_depth, reading)
        loader.get_event()
    loader.get_event()  # DocumentEnd
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise ComposerError(
            "expected a single document in the stream",
            first.start_mark,
            "but found another document",
            event.start_mark,
        )


def _remember(anchors: dict[str, Any], event: Any, value: Any) -> None:
    if event.anchor is not None:
        anchors[event.anchor] = value


def _scalar(loader: Any, event: Any) -> Any:
    tag = event.tag
    value = event.value
    if tag is None or tag == "!":
        if not event.implicit[0]:
            return value  # quoted: a string
        if value and value[0] not in loader.yaml_implicit_resolvers:
            return value  # plain, and no implicit type starts with its first character
        tag = loader.resolve(ScalarNode, value, event.implicit)
    if tag == _STR:
        return value
    if tag == _MERGE_TAG:
        return _MERGE
    node = ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
    try:
        constructed = loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as error:  # e.g. a 13th month, !!int x
        raise ConstructorError(
            None, None, f"cannot read {value!r} as {tag}: {error}", event.start_mark
        ) from None
    loader.constructed_objects.clear()
    return constructed


def _collection_tag(loader: Any, event: Any, kind: type[Any], default: str) -> None:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(kind, None, event.implicit)
    if tag != default:
        raise ConstructorError(
            None,
            None,
            f"could not determine a constructor for the tag {tag!r}",
            event.start_mark,
        )


class Reading:
    """What building one value met: ``values`` built, and whether it is ``suspect`` (an alias
    was used, a NUL was read, or the count passed the bound), when the caller walks it whole
    against the bounds."""

    __slots__ = ("max_values", "suspect", "values")

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.values = 0
        self.suspect = False


def _value(
    loader: Any,
    event: Any,
    anchors: dict[str, Any],
    depth: int,
    max_depth: int,
    reading: Reading | None = None,
) -> Any:
    """The value that starts with ``event`` (at ``depth``: the document is 1), built without
    recursion."""
    stack: list[_Collection] = []
    values = 0
    suspect = False
    get_event = loader.get_event
    while True:
        values += 1
        kind = type(event)
        if kind is ScalarEvent:
            if depth + len(stack) > max_depth:
                raise TooDeep
            value = _scalar(loader, event)
            if event.anchor is not None:
                anchors[event.anchor] = value
            if type(value) is str and "\x00" in value:
                suspect = True
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if depth + len(stack) > max_depth:
                raise TooDeep
            if kind is MappingStartEvent:
                _collection_tag(loader, event, MappingNode, _MAP)
                collection = _Collection({}, depth + len(stack))
            else:
                _collection_tag(loader, event, SequenceNode, _SEQ)
                collection = _Collection([], depth + len(stack))
            stack.append(collection)
            if event.anchor is not None:
                anchors[event.anchor] = collection.value
            event = get_event()
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            values -= 1
            value = _finished(stack.pop())
        elif kind is AliasEvent:
            if event.anchor not in anchors:
                mark: Any = event.start_mark
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
            value = anchors[event.anchor]
            if value is _WHOLE:
                mark = event.start_mark
                raise ComposerError(
                    None, None, f"an alias to a whole section ({event.anchor!r}) is refused", mark
                )
            suspect = True
        else:  # pragma: no cover - the parser yields no other event inside a document
            raise ComposerError(None, None, f"unexpected {event}", event.start_mark)
        if not stack:
            if reading is not None:
                reading.values = values
                reading.suspect = suspect or values > reading.max_values
            return value
        parent = stack[-1]
        if type(parent.value) is list:
            parent.value.append(value)
        elif parent.key_set and parent.key is not _MERGE:
            parent.value[parent.key] = value
            parent.key_set = False
        elif not parent.key_set and type(value) is str:
            parent.key = value
            parent.key_set = True
        else:
            _add(parent, value, event)
        event = get_event()


def _add(parent: _Collection, value: Any, event: Any) -> None:
    if isinstance(parent.value, list):
        parent.value.append(value)
        return
    if not parent.key_set:
        if value is _MERGE:
            parent.key = _MERGE
        else:
            try:
                hash(value)
            except TypeError:
                raise ConstructorError(
                    "while constructing a mapping",
                    None,
                    "found unhashable key",
                    event.start_mark,
                ) from None
            parent.key = value
        parent.key_set = True
        return
    if parent.key is _MERGE:
        parent.merges.append(value)
    else:
        parent.value[parent.key] = value
    parent.key_set = False


def _finished(collection: _Collection) -> Any:
    """A mapping with its ``<<`` merges applied (the safe loader's rule: explicit keys win,
    then the merged mappings in order)."""
    if not collection.merges:
        return collection.value
    merged: dict[Any, Any] = {}
    for value in collection.merges:
        for part in reversed(value) if isinstance(value, list) else [value]:
            if not isinstance(part, dict):
                raise ConstructorError(
                    "while constructing a mapping",
                    None,
                    "expected a mapping or list of mappings for merging",
                    None,
                )
            merged.update(part)
    merged.update(collection.value)
    collection.value.clear()
    collection.value.update(merged)
    return collection.value
