"""Field rules: the one statement of what a field of a JSON document may hold.

A document is a frozen dataclass deriving from ``Document`` whose fields are annotated
``Annotated[type, Rule(...)]``. The page parses JSON into documents with ``Document.from_dict``;
the server derives its pydantic validation and the MCP/OpenAPI JSON schemas from the very same
annotations (``chalice_app/content_schema.py`` reads ``document_fields``). A limit or description
written here is therefore the limit and description everywhere.

Field types are deliberately few, each with a portable JSON schema (no tuples, no discriminator):
``str``, ``int``, ``float`` (any finite number, integers included), ``Literal["a", "b"]``, a
document class, a union of document classes that each carry a ``kind`` (told apart by it),
``tuple[item, ...]`` (a JSON array) and any of these ``| None``. A field with a default may be
left out of the JSON.
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, dataclass, fields, is_dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin, get_type_hints

from web_py.messages import MessageError


@dataclass(frozen=True)
class Rule:
    """What one field means and the limits on it.

    ``min_len``/``max_len`` count characters of a string or entries of an array (inclusive).
    ``decimal`` marks a string that must be a finite decimal number such as "0.0301".
    """

    description: str
    min_len: int = 0
    max_len: int | None = None
    decimal: bool = False


ShapeKind = Literal["string", "integer", "number", "choice", "document", "documents", "array"]


@dataclass(frozen=True)
class Shape:
    """A field type as the parser and the schema builder both read it."""

    kind: ShapeKind
    rule: Rule | None
    nullable: bool = False
    choices: tuple[str, ...] = ()
    documents: tuple[type[Document], ...] = ()
    item: Shape | None = None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    shape: Shape
    rule: Rule
    # Without a default the field must be present in the JSON (it may still be null if nullable).
    required: bool
    default: Any = None


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages the AI (which thinks in JSON) can act on."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut short: a message must not echo a 10,000-character string back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_decimal_string(where: str, value: Any) -> str:
    """``value`` if it is a finite decimal string such as "0.0301", else MessageError naming ``where``."""
    if not isinstance(value, str):
        raise MessageError(f"{where} must be a decimal string, got {json_type(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MessageError(f"{where} is not a decimal: {shown(value)}") from None
    if not number.is_finite():
        raise MessageError(f"{where} must be finite")
    return value


# -- reading the annotations -------------------------------------------------------------------

def shape_of(hint: Any, rule: Rule | None = None) -> Shape:
    """The shape of a field annotation; TypeError for a type outside the supported few."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *metadata = get_args(hint)
        rules = [m for m in metadata if isinstance(m, Rule)]
        return shape_of(base, rules[0] if rules else rule)
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(hint) if m is not type(None)]
        nullable = len(members) < len(get_args(hint))
        if len(members) == 1:
            inner = shape_of(members[0], rule)
            return Shape(inner.kind, inner.rule, nullable or inner.nullable, inner.choices, inner.documents,
                         inner.item)
        if all(_is_document(m) and isinstance(getattr(m, "kind", None), str) for m in members):
            return Shape("documents", rule, nullable, documents=tuple(members))
        raise TypeError(f"unsupported union {hint!r}: only documents with a kind may be mixed")
    if origin is Literal:
        choices = get_args(hint)
        if not all(isinstance(c, str) for c in choices):
            raise TypeError(f"unsupported Literal {hint!r}: strings only")
        return Shape("choice", rule, choices=choices)
    if origin is tuple:
        args = get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported tuple {hint!r}: only tuple[item, ...] (a JSON array)")
        return Shape("array", rule, item=shape_of(args[0]))
    simple: dict[Any, ShapeKind] = {str: "string", int: "integer", float: "number"}
    if hint in simple:
        return Shape(simple[hint], rule)
    if _is_document(hint):
        return Shape("document", rule, documents=(hint,))
    raise TypeError(f"unsupported field type {hint!r}")


def _is_document(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Document) and is_dataclass(hint)


_FIELDS: dict[type, tuple[FieldSpec, ...]] = {}


def document_fields(cls: type[Document]) -> tuple[FieldSpec, ...]:
    """The fields of a document class with their shapes; every field must carry a Rule."""
    cached = _FIELDS.get(cls)
    if cached is None:
        # Read once per class: type hints are resolved lazily, after every class of the module exists.
        cached = _FIELDS[cls] = _read_fields(cls)
    return cached


def _read_fields(cls: type[Document]) -> tuple[FieldSpec, ...]:
    hints = get_type_hints(cls, include_extras=True)
    specs = []
    for f in fields(cls):  # type: ignore[arg-type]
        shape = shape_of(hints[f.name])
        if shape.rule is None:
            raise TypeError(f"{cls.__name__}.{f.name} needs a Rule: its description is public documentation")
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a default must be a plain JSON value, not a factory")
        required = f.default is MISSING
        specs.append(FieldSpec(f.name, shape, shape.rule, required, None if required else f.default))
    return tuple(specs)


# -- checking values ----------------------------------------------------------------------------

def conform(shape: Shape, value: Any, where: str, *, from_json: bool) -> Any:
    """``value`` checked against ``shape`` (arrays become tuples), or MessageError naming ``where``.

    With ``from_json`` objects become documents; otherwise documents must already be instances
    (what a caller building them in Python passes).
    """
    if value is None:
        if shape.nullable:
            return None
        raise MessageError(f"{where} must not be null")
    rule = shape.rule
    if shape.kind == "string":
        return _string(value, where, rule)
    if shape.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise MessageError(f"{where} must be an integer, got {json_type(value)}")
        return value
    if shape.kind == "number":
        return _number(value, where)
    if shape.kind == "choice":
        if not isinstance(value, str) or value not in shape.choices:
            raise MessageError(f"{where} must be one of {list(shape.choices)}, got {shown(value)}")
        return value
    if shape.kind == "array":
        if not isinstance(value, (list, tuple)):
            raise MessageError(f"{where} must be an array, got {json_type(value)}")
        _check_length(len(value), where, rule, chars=False)
        assert shape.item is not None
        return tuple(conform(shape.item, v, f"{where}[{i}]", from_json=from_json) for i, v in enumerate(value))
    return _document(shape, value, where, from_json=from_json)


def _string(value: Any, where: str, rule: Rule | None) -> str:
    if not isinstance(value, str):
        raise MessageError(f"{where} must be a string, got {json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\ud800") cannot be shown, and pydantic refuses it too.
        raise MessageError(f"{where} is not valid Unicode text") from None
    _check_length(len(value), where, rule, chars=True)
    if rule is not None and rule.decimal:
        check_decimal_string(where, value)
    return value


def _number(value: Any, where: str) -> int | float:
    # bool is an int subclass; True as a chart point is almost certainly a bug upstream.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"{where} must be a number, got {json_type(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        finite = False
    if not finite:
        raise MessageError(f"{where} must be a finite number")
    return value


def _check_length(length: int, where: str, rule: Rule | None, *, chars: bool) -> None:
    if rule is None:
        return
    if length < rule.min_len:
        if chars and rule.min_len == 1:
            raise MessageError(f"{where} must not be empty")
        unit = "characters" if chars else "entries"
        raise MessageError(f"{where} has {length} {unit}, at least {rule.min_len} required")
    if rule.max_len is not None and length > rule.max_len:
        if chars:
            raise MessageError(f"{where} is {length} characters long, at most {rule.max_len} allowed")
        raise MessageError(f"{where} has {length} entries, at most {rule.max_len} allowed")


def _document(shape: Shape, value: Any, where: str, *, from_json: bool) -> Document:
    if isinstance(value, shape.documents):
        return value
    names = [d.__name__ for d in shape.documents]
    if not from_json:
        raise MessageError(f"{where} must be one of {names}, got {type(value).__name__}")
    if shape.kind == "document":
        return shape.documents[0].from_dict(value, where)
    if not isinstance(value, dict):
        raise MessageError(f"{where} must be a JSON object, got {json_type(value)}")
    by_kind = {d.kind: d for d in shape.documents if d.kind is not None}
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in by_kind:
        raise MessageError(f"{where} has unknown kind {shown(kind)}; expected one of {sorted(by_kind)}")
    return by_kind[kind].from_dict(value, where)


# -- documents ----------------------------------------------------------------------------------

class Document:
    """Base of the frozen dataclasses that travel as JSON: checks itself, parses, serialises.

    ``kind`` (when set) is written as a ``"kind"`` member and tells documents in a union apart.
    ``noun`` names the document in messages. Subclasses put rules spanning several fields in
    ``check``.
    """

    kind: ClassVar[str | None] = None
    noun: ClassVar[str] = "document"

    def __post_init__(self) -> None:
        for spec in document_fields(type(self)):
            value = conform(spec.shape, getattr(self, spec.name), f"{self.noun}.{spec.name}", from_json=False)
            # Frozen: lists from a caller become tuples so documents stay hashable and comparable.
            object.__setattr__(self, spec.name, value)
        self.check()

    def check(self) -> None:
        """Rules across fields; runs after every field passed its own."""

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> Self:
        where = where or cls.noun
        if not isinstance(data, dict):
            raise MessageError(f"{where} must be a JSON object, got {json_type(data)}")
        specs = document_fields(cls)
        if cls.kind is not None and data.get("kind") != cls.kind:
            raise MessageError(f"{where} must have kind {cls.kind!r}, got {shown(data.get('kind'))}")
        allowed = {s.name for s in specs} | ({"kind"} if cls.kind is not None else set())
        missing = sorted(s.name for s in specs if s.required and s.name not in data)
        unknown = sorted(str(k)[:40] for k in data if k not in allowed)
        if missing:
            raise MessageError(f"{where} is missing {missing}")
        if unknown:
            raise MessageError(f"{where} has unknown fields {unknown}")
        values = {
            s.name: conform(s.shape, data[s.name], f"{where}.{s.name}", from_json=True) for s in specs if s.name in data
        }
        try:
            return cls(**values)
        except MessageError as exc:
            raise MessageError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; optional fields that are None are left out."""
        data: dict[str, Any] = {} if self.kind is None else {"kind": self.kind}
        for spec in document_fields(type(self)):
            value = getattr(self, spec.name)
            if value is None and not spec.required:
                continue
            data[spec.name] = _to_json(value)
        return data


def _to_json(value: Any) -> Any:
    if isinstance(value, Document):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value
