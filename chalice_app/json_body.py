"""Parse a request body that anyone on the internet may have written.

``json.loads`` alone is not safe on hostile bodies: a few thousand nested ``[`` make it raise
``RecursionError`` (not ``ValueError``), and a value that parses at depth 900 still takes pydantic
or ``json.dumps`` close to the recursion limit later. So the body's size is checked first, then its
nesting depth (a scan of the raw bytes that runs in C: strings cut out with ``split``, the
brackets left over counted with ``accumulate``), and only then is it parsed. Both adapters (REST and MCP)
use this one function and map its errors to their own wire format.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from chalice_app.errors import InvalidInput, PayloadTooLarge

# Our deepest legitimate body is an MCP call carrying a layout (message > params > arguments >
# content > blocks > block > rows > row): 8 levels. 32 leaves room without letting recursion near.
MAX_DEPTH = 32

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# +1 for an opening bracket, -1 for a closing one, indexed by byte value.
_STEP = [1 if b in b"[{" else -1 for b in range(256)]


class BodyTooDeep(InvalidInput):
    """Nested deeper than MAX_DEPTH: refused before parsing (MCP answers it as a parse error)."""


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of ``raw`` outside JSON strings (0 for a scalar)."""
    # Escapes pair up from the left, so dropping every \\ and then every \" leaves only the quotes
    # that open or close strings; the text between every other quote is then outside all strings.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def parse_json_body(raw: bytes | str | None, *, limit: int, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``raw``; raises PayloadTooLarge (413), BodyTooDeep or InvalidInput (400).

    ``limit`` counts bytes. An empty or missing body is refused as not JSON; callers that accept an
    empty body decide that before calling.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else (raw or b"")
    if len(data) > limit:
        raise PayloadTooLarge(f"request body is {len(data)} bytes; the limit is {limit} bytes")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise BodyTooDeep(f"request body is nested {depth} levels deep; the limit is {max_depth}")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        # Unreachable while the depth scan holds (e.g. a UTF-16 body it misreads); never a 500.
        raise BodyTooDeep(f"request body is nested too deeply; the limit is {max_depth}") from None
