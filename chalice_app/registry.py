"""The one registry of operations.

``@api_function`` only records an ``Operation`` and returns the function unchanged. The REST routes,
the MCP ``tools/list``/``tools/call`` and the OpenAPI document are all produced by reading this
record; there is no second list of operations anywhere.

Three kinds of parameter are injected by the adapters instead of being read from the arguments,
and are kept out of the public schema: a ``Caller`` (who is calling, as the transport established
it), a ``SessionService`` (the service graph of the app that received the call) and ``PageLinks``
(absolute page URLs as this caller reached the server).

An MCP operation also records a ``title`` and its behaviour hints (``ToolHints``: read-only,
destructive, idempotent, open world), which hosts use to decide what to run without asking, and
whether its result names a session a chat host may show live (``view``: ``mcp_app_view``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from chalice_app.caller import Caller
from chalice_app.errors import InvalidInput
from chalice_app.page_links import PageLinks
from chalice_app.sessions import SessionService

PROTOCOLS = frozenset({"mcp", "rest"})
F = TypeVar("F", bound=Callable[..., Any])
ServiceProvider = Callable[[], SessionService]


@dataclass(frozen=True)
class ToolHints:
    """MCP tool annotations; the defaults are the spec's own (a tool that may change anything)."""

    read_only: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = False

    def to_mcp(self) -> dict[str, bool]:
        return {"readOnlyHint": self.read_only, "destructiveHint": self.destructive and not self.read_only,
                "idempotentHint": self.idempotent or self.read_only, "openWorldHint": self.open_world}


@dataclass(frozen=True)
class Operation:
    name: str
    func: Callable[..., Any]
    protocols: frozenset[str]
    method: str
    path: str
    summary: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    caller_param: str | None
    service_param: str | None = None
    # An AI's operation that browsers may also reach over REST: with a token configured, REST
    # callers need it too (MCP callers always do).
    rest_needs_token: bool = False
    links_param: str | None = None
    # A host shows the title and decides from the hints whether to ask the user first. Every MCP
    # operation should give both (a test checks the registry); without hints the spec's cautious
    # defaults apply.
    title: str | None = None
    hints: ToolHints | None = None
    # A short readable rendering of the result for the model, beside the JSON (MCP text content).
    text: Callable[[Any], str] | None = None
    # The result names a session its host may show live, in the session view (``mcp_app_view``).
    view: bool = False

    def parse_arguments(self, arguments: Any) -> BaseModel:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise InvalidInput(f"{self.name}: arguments must be a JSON object.")
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            raise InvalidInput(f"{self.name}: {summary}", details=problems) from None

    def invoke(self, arguments: BaseModel, caller: Caller, services: ServiceProvider | None = None,
               links: PageLinks | None = None) -> BaseModel:
        """Call the operation; ``services`` is asked for the service only by operations that declare one.

        Without ``links`` (an adapter that does not know how it was reached) page URLs are relative.
        """
        kwargs = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.caller_param is not None:
            kwargs[self.caller_param] = caller
        if self.links_param is not None:
            kwargs[self.links_param] = links or PageLinks()
        if self.service_param is not None:
            if services is None:
                raise RuntimeError(f"{self.name} needs a SessionService, and this adapter was given none")
            kwargs[self.service_param] = services()
        return self.func(**kwargs)

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()


class Registry:
    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def api_function(
        self,
        protocols: Iterable[str] = ("mcp", "rest"),
        *,
        method: str = "POST",
        path: str | None = None,
        rest_needs_token: bool = False,
        title: str | None = None,
        hints: ToolHints | None = None,
        text: Callable[[Any], str] | None = None,
        view: bool = False,
    ) -> Callable[[F], F]:
        chosen = frozenset(protocols)
        unknown = chosen - PROTOCOLS
        if not chosen or unknown:
            raise ValueError(f"protocols must be a non-empty subset of {sorted(PROTOCOLS)}, got {sorted(chosen)}")

        def record(func: F) -> F:
            operation = replace(_describe(func, chosen, method.upper(), path), rest_needs_token=rest_needs_token,
                                title=title, hints=hints, text=text, view=view)
            if operation.name in self._operations:
                raise ValueError(f"operation {operation.name!r} is registered twice")
            self._operations[operation.name] = operation
            return func

        return record

    def operations(self, protocol: str | None = None) -> list[Operation]:
        ops = sorted(self._operations.values(), key=lambda op: op.name)
        return [op for op in ops if protocol is None or protocol in op.protocols]

    def get(self, name: str, protocol: str | None = None) -> Operation | None:
        op = self._operations.get(name)
        if op is None or (protocol is not None and protocol not in op.protocols):
            return None
        return op


def _describe(func: Callable[..., Any], protocols: frozenset[str], method: str, path: str | None) -> Operation:
    doc = inspect.getdoc(func)
    if not doc:
        raise ValueError(f"{func.__name__}: an operation's docstring is its public description; write one")
    hints = get_type_hints(func, include_extras=True)
    output = hints.get("return")
    if not (isinstance(output, type) and issubclass(output, BaseModel)):
        raise ValueError(f"{func.__name__}: the return type must be a pydantic model (it is the output schema)")

    fields: dict[str, Any] = {}
    caller_param = service_param = links_param = None
    for name, param in inspect.signature(func).parameters.items():
        annotation = hints.get(name)
        if annotation is None:
            raise ValueError(f"{func.__name__}: parameter {name!r} needs a type hint")
        if annotation is Caller:
            caller_param = name
            continue
        if annotation is SessionService:
            service_param = name
            continue
        if annotation is PageLinks:
            links_param = name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)

    model_name = "".join(part.title() for part in func.__name__.split("_")) + "Input"
    input_model = create_model(
        model_name, __config__=ConfigDict(extra="forbid"), **fields
    )
    return Operation(
        name=func.__name__,
        func=func,
        protocols=protocols,
        method=method,
        path=path or f"/api/{func.__name__}",
        summary=doc.splitlines()[0].strip(),
        description=doc,
        input_model=input_model,
        output_model=output,
        caller_param=caller_param,
        service_param=service_param,
        links_param=links_param,
    )


registry = Registry()
api_function = registry.api_function
