"""The content vocabulary of ``web_py/content.py`` as pydantic types: validation and JSON schemas.

Nothing here restates a field. Each document class is read through ``web_py.rules`` (its fields,
their limits and descriptions) and turned into a pydantic model with the same rules, built once
per class. ``Annotated[Layout, VOCABULARY]`` is then a pydantic type that

- validates input with that model (errors name the exact field) and then with the page's own
  parser, ``Layout.from_dict`` (rules across fields, such as one label per chart point), so the
  server accepts exactly what every page will accept, and yields the ``Layout`` itself;
- serialises a ``Layout`` with ``to_dict`` (the document as stored and sent);
- publishes the model's JSON schema, kept portable for strict validators (Ajv strict mode and the
  like): unions are a plain ``oneOf`` whose members carry a ``const`` kind, never pydantic's
  ``discriminator`` keyword; arrays are ``items`` with ``minItems``/``maxItems``, never tuples
  (``prefixItems``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    Tag,
    create_model,
)
from pydantic_core import core_schema

from web_py.rules import Document, Shape, check_decimal_string, document_fields


class _FromVocabulary:
    """Pydantic metadata: ``Annotated[SomeDocument, VOCABULARY]`` (see the module docstring)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        if not (isinstance(source, type) and issubclass(source, Document)):
            raise TypeError(f"VOCABULARY annotates document classes, not {source!r}")
        document: type[Document] = source
        model = model_of(document)
        model_schema = handler.generate_schema(model)

        def validate(value: Any, validate_model: core_schema.ValidatorFunctionWrapHandler) -> Document:
            if isinstance(value, document):
                return value  # built in Python, so it already checked itself
            validate_model(value)
            # MessageError is a ValueError: pydantic reports it as a validation error of this field.
            return document.from_dict(value)

        def serialise(value: Document) -> BaseModel:
            return model.model_validate(value.to_dict())

        return core_schema.no_info_wrap_validator_function(
            validate,
            model_schema,
            serialization=core_schema.plain_serializer_function_ser_schema(serialise, return_schema=model_schema),
        )


VOCABULARY = _FromVocabulary()


_MODELS: dict[type, type[BaseModel]] = {}


def model_of(document: type[Document]) -> type[BaseModel]:
    """The pydantic model of a document class: same fields, limits, descriptions; extra fields refused."""
    model = _MODELS.get(document)
    if model is None:
        # One model per class, so every schema that mentions it shares one $defs entry.
        model = _MODELS[document] = _build_model(document)
    return model


def _build_model(document: type[Document]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    if document.kind is not None:
        fields["kind"] = (Literal[document.kind], Field(description=f'Always "{document.kind}"'))
    for spec in document_fields(document):
        default = ... if spec.required else spec.default
        fields[spec.name] = (_annotation(spec.shape), Field(default, description=spec.rule.description))
    return create_model(
        document.__name__,
        __config__=ConfigDict(extra="forbid"),
        __doc__=document.__doc__,
        **fields,
    )


def _annotation(shape: Shape) -> Any:
    rule = shape.rule
    annotation: Any
    if shape.kind == "string":
        metadata: list[Any] = [Field(strict=True, min_length=rule.min_len if rule and rule.min_len else None,
                                     max_length=rule.max_len if rule else None)]
        if rule is not None and rule.decimal:
            metadata.append(AfterValidator(lambda v: check_decimal_string("value", v)))
        annotation = Annotated[(str, *metadata)]
    elif shape.kind == "integer":
        annotation = Annotated[int, Field(strict=True)]
    elif shape.kind == "number":
        # Strict: no numeric strings and no booleans; integers count (and must fit a float).
        annotation = Annotated[float, Field(strict=True, allow_inf_nan=False)]
    elif shape.kind == "choice":
        annotation = Literal[shape.choices]
    elif shape.kind == "document":
        annotation = model_of(shape.documents[0])
    elif shape.kind == "documents":
        members = tuple(Annotated[model_of(d), Tag(str(d.kind))] for d in shape.documents)
        kinds = sorted(str(d.kind) for d in shape.documents)
        annotation = Annotated[
            Union[members],  # noqa: UP007 (a union built at run time)
            # A callable discriminator picks the member by kind without emitting the (non-portable)
            # OpenAPI "discriminator" keyword: the schema stays a plain oneOf.
            Discriminator(_kind_of, custom_error_type="unknown_kind",
                          custom_error_message=f"unknown kind; expected one of {kinds}"),
        ]
    else:
        assert shape.kind == "array" and shape.item is not None
        item = _annotation(shape.item)
        if shape.item.rule is not None:
            item = Annotated[item, Field(description=shape.item.rule.description)]
        annotation = Annotated[list[item], Field(  # type: ignore[valid-type]
            min_length=rule.min_len if rule and rule.min_len else None, max_length=rule.max_len if rule else None)]
    return annotation | None if shape.nullable else annotation


def _kind_of(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None
