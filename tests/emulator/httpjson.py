# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Request/response helpers shared by the handlers: Nomad's error shape, JSON encoding, Go-like body decoding."""
from __future__ import annotations

import json

from aiohttp import web


class HttpError(Exception):
    """An answer with a plain-text body (Nomad's error shape)."""

    def __init__(self, status: int, body: str, headers=None, *, rpc: bool = False):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.rpc = rpc  # an uncoded error from the server/client RPC layer (may carry "rpc error: ")

    def response(self, rpc_error_prefix: bool = False) -> web.Response:
        body = f"rpc error: {self.body}" if self.rpc and rpc_error_prefix else self.body
        return error_response(self.status, body, self.headers)


def error_response(status: int, body: str, headers=None) -> web.Response:
    response = web.Response(status=status, body=body.encode("utf-8"), headers=headers or {})
    response.content_type = "text/plain"
    response.charset = "utf-8"
    return response


def wants_pretty(request) -> bool:
    return "pretty" in request.query and request.query.get("pretty") != "0"


def encode(data, pretty: bool) -> bytes:
    if pretty:
        return (json.dumps(data, indent=4) + "\n").encode()
    return json.dumps(data, separators=(",", ":")).encode()


def json_response(request, data, *, status: int = 200, headers=None, raw: bytes | None = None) -> web.Response:
    body = raw if raw is not None else encode(data, wants_pretty(request))
    return web.Response(status=status, body=body, headers=headers or {}, content_type="application/json")


def go_json_error(text: str, err: json.JSONDecodeError) -> str:
    """Go encoding/json's wording for the common syntax errors."""
    if err.pos >= len(text.rstrip()):
        return "unexpected end of JSON input"
    char = text[err.pos]
    if "Expecting value" in err.msg:
        return f"invalid character {_quote_char(char)} looking for beginning of value"
    if "Expecting property name" in err.msg:
        return f"invalid character {_quote_char(char)} looking for beginning of object key string"
    if "Expecting ':'" in err.msg:
        return f"invalid character {_quote_char(char)} after object key"
    if "Expecting ',' delimiter" in err.msg:
        return f"invalid character {_quote_char(char)} after object key:value pair"
    if "Extra data" in err.msg:
        return f"invalid character {_quote_char(char)} after top-level value"
    return f"invalid character {_quote_char(char)} in string literal"


def _quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return f"'{char}'"


_GO_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number", type(None): "null"}


def decode_go_struct(text: str, fields: dict, struct_name: str) -> dict:
    """Decode a JSON object like Go's encoding/json into a struct: case-insensitive keys, typed fields.

    fields maps the Go field name to its Python type (str or bool). Raises ValueError with Go's text.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(go_json_error(text, err)) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"json: cannot unmarshal {_GO_KIND[type(data)]} into Go value of type structs.{struct_name}")
    decoded = {}
    lowered = {name.lower(): name for name in fields}
    for key, value in data.items():
        name = lowered.get(key.lower())
        if name is None or value is None:
            continue
        wanted = fields[name]
        if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
            go_type = "string" if wanted is str else "bool"
            raise ValueError(f"json: cannot unmarshal {_GO_KIND[type(value)]} into Go struct field "
                             f"{struct_name}.{name} of type {go_type}")
        decoded[name] = value
    return decoded
