# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""go-bexpr v0.1.13 filter expressions, as Nomad 1.6.3+ evaluates ``GET /v1/allocations?filter=``.

Facts come from go-bexpr (grammar/grammar.peg, grammar/ast.go, evaluate.go, coerce.go), the pigeon
parser generator it uses, mitchellh/pointerstructure v1.2.1 (get.go) and Go's strconv; the code is our own.

Public interface (the emulator core calls it):

* ``compile_filter(text, map_paths=..., uint_paths=...) -> Filter`` (cached on its arguments); raises
  ``FilterParseError`` whose ``str()`` is pigeon's error text, e.g. ``1:9 (8): no match found, expected: ...``
  or ``1:21 (20): rule "grouping": Unmatched parentheses`` (several errors are joined with newlines).
* ``Filter.evaluate(datum) -> bool`` raises ``FilterEvaluationError`` with go-bexpr's texts, e.g.
  ``error finding value in datum: /InvalidField at part 0: couldn't find key: struct field with name "InvalidField"``.

The datum is Go's ``structs.Allocation`` rendered as plain Python data with Go field names: dicts for
structs *and* maps, lists for slices, ``None`` for nil pointers/maps/slices, ``bool``/``int``/``float``/``str``
for the primitive kinds. Two hints recover the Go type facts that plain data loses:

* ``map_paths`` -- selector paths whose values are Go maps. A dict anywhere else is a Go struct, so a missing
  key in it is a "struct field not found" error, while a missing key in a map is the operator's "not present"
  answer (only as the last path element, like go-bexpr). Paths are dotted with ``*`` matching any one
  segment (a slice index or a map key): ``"Job.Meta"``, ``"Job.TaskGroups.*.Meta"``, ``"TaskStates"``.
  ``None`` at a map path is an empty (nil) map.
* ``uint_paths`` -- paths of unsigned integer fields (``CreateIndex`` ...): their match values are parsed
  with ``strconv.ParseUint`` (so ``-1`` is a coercion error), other ints with ``ParseInt``.

Both default to the Nomad ``Allocation`` layout (``ALLOCATION_MAP_PATHS``, ``ALLOCATION_UINT_PATHS``).
A ``None`` leaf is treated as a nil slice/map for ``in``/``contains``/``is empty`` (Go would fail or panic only
for a nil struct pointer there) and as an uncomparable value for ``==``.

Quoting: a double-quoted value ends at the first ``"`` (even after a backslash, so ``\\"`` is a parse error),
and a double-quoted value shaped like ``"/a/b"`` is read as a JSON-pointer selector whose text is ``a/b``;
``go_string_literal()`` writes any string so that it reads back unchanged. Hex/octal numbers must be quoted.

Regular expressions are Go RE2 in Nomad; here they run on Python ``re`` (ASCII classes, ``\\z`` and ``$``
translated, lookaround and backreferences rejected like RE2). Go map iteration order is random; ``any``/``all``
iterate dict order. The ``any``/``all`` syntax (``any <sel> as <x> { ... }``, ``as <k>, <v>``, ``as _, <v>``,
``as <k>, _``) follows v0.1.13's AST and evaluator; its exact grammar text was not available, so parse-error
"expected" lists around it may differ from Go. Nesting deeper than Python's recursion limit is a parse error
(``expression nested too deeply``; Go has no such limit).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

ALLOCATION_MAP_PATHS = frozenset({
    "TaskStates", "TaskResources", "SignedIdentities", "TaskStates.*.Events.*.Details",
    "AllocatedResources.Tasks", "AllocatedResources.TaskLifecycles",
    "Metrics.NodesAvailable", "Metrics.ClassFiltered", "Metrics.ConstraintFiltered", "Metrics.ClassExhausted",
    "Metrics.DimensionExhausted", "Metrics.ResourcesExhausted", "Metrics.Scores",
    "Job.Meta", "Job.TaskGroups.*.Meta", "Job.TaskGroups.*.Volumes", "Job.TaskGroups.*.Services.*.Meta",
    "Job.TaskGroups.*.Tasks.*.Meta", "Job.TaskGroups.*.Tasks.*.Env", "Job.TaskGroups.*.Tasks.*.Config",
    "Job.TaskGroups.*.Tasks.*.Services.*.Meta",
})
ALLOCATION_UINT_PATHS = frozenset({
    "CreateIndex", "ModifyIndex", "AllocModifyIndex", "TaskStates.*.Restarts",
    "Job.Version", "Job.CreateIndex", "Job.ModifyIndex", "Job.JobModifyIndex",
    "DeploymentStatus.ModifyIndex",
})


class FilterParseError(ValueError):
    """The expression does not parse; ``str()`` is go-bexpr's (pigeon's) error text."""


class FilterEvaluationError(ValueError):
    """Evaluating the expression against one datum failed; ``str()`` is go-bexpr's error text."""


# --------------------------------------------------------------------------------------------------
# Go formatting helpers

_GO_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """strconv.Quote (what Go's ``%q`` prints for a string)."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\\ufffd")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def go_string_literal(text: str) -> str:
    """A double-quoted filter value that go-bexpr reads back as exactly ``text``.

    go-bexpr ends a double-quoted string at the first ``"`` even after a backslash, so ``\\"`` cannot be
    used: a quote is written ``\\x22``. A value starting with ``/`` would be read as a JSON-pointer selector
    (whose text drops that slash), so a leading slash is written ``\\x2f``.
    """
    body = go_quote(text)[1:-1].replace('\\"', "\\x22")
    if body.startswith("/"):
        body = "\\x2f" + body[1:]
    return f'"{body}"'


def _pointer_text(parts) -> str:
    """pointerstructure.Pointer.String()."""
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


# --------------------------------------------------------------------------------------------------
# strconv.Unquote

class _UnquoteError(Exception):
    pass


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX = "0123456789abcdefABCDEF"


def _unquote_double(body: str) -> str:
    """The inside of a Go double-quoted literal -> its value; _UnquoteError on invalid syntax."""
    if "\n" in body:
        raise _UnquoteError
    if "\\" not in body:
        return body
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            index += 1
            continue
        index += 1
        if index >= len(body):
            raise _UnquoteError
        kind = body[index]
        index += 1
        if kind in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[kind].encode()
        elif kind == '"':
            out += b'"'
        elif kind in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[kind]
            digits = body[index:index + width]
            if len(digits) != width or any(d not in _HEX for d in digits):
                raise _UnquoteError
            index += width
            value = int(digits, 16)
            if kind == "x":
                out.append(value)
            elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise _UnquoteError
            else:
                out += chr(value).encode()
        elif kind in "01234567":
            digits = body[index - 1:index + 2]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise _UnquoteError
            value = int(digits, 8)
            if value > 255:
                raise _UnquoteError
            index += 2
            out.append(value)
        else:
            raise _UnquoteError
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        # Go strings may hold any bytes; keep the undecodable ones visible as U+FFFD like Go would print them.
        return out.decode("utf-8", "replace")


def _unquote(literal: str) -> str:
    if literal[0] == "`":
        return literal[1:-1].replace("\r", "")
    return _unquote_double(literal[1:-1])


# --------------------------------------------------------------------------------------------------
# AST

EQUAL, NOT_EQUAL, IN, NOT_IN, IS_EMPTY, IS_NOT_EMPTY, MATCHES, NOT_MATCHES = (
    "Equal", "Not Equal", "In", "Not In", "Is Empty", "Is Not Empty", "Matches", "Not Matches")

# ast.go NotPresentDisposition: the answer when the selector names a missing key of a map.
_NOT_PRESENT = {EQUAL: False, NOT_EQUAL: True, IN: False, NOT_IN: True, IS_EMPTY: True, IS_NOT_EMPTY: False,
                MATCHES: False, NOT_MATCHES: True}


@dataclass(frozen=True)
class Selector:
    parts: tuple
    json_pointer: bool = False

    def __str__(self) -> str:
        return ("/" if self.json_pointer else ".").join(self.parts)


@dataclass(frozen=True)
class Match:
    operator: str
    selector: Selector
    value: Optional[str]


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class Binary:
    operator: str  # "and" | "or"
    left: object
    right: object


@dataclass(frozen=True)
class Binding:
    mode: str  # "Default" | "Index" | "Value" | "Index & Value"
    default: str = ""
    index: str = ""
    value: str = ""


@dataclass(frozen=True)
class Collection:
    operator: str  # "ANY" | "ALL"
    selector: Selector
    binding: Binding
    inner: object


# --------------------------------------------------------------------------------------------------
# Parser: a PEG parser that mirrors go-bexpr's pigeon grammar, including pigeon's failure tracking
# (farthest failure position + the set of matchers that failed there) and its error recording, so that
# error texts and positions come out like Nomad's.

_WS_WANT = "[ \\t\\r\\n]"
_IDENT_START_WANT = "[a-zA-Z]"
_IDENT_REST_WANT = "[a-zA-Z0-9_/]"
_POINTER_SEGMENT_WANT = "[\\pL\\pN-_.~:|]"
_POINTER_PUNCTUATION = frozenset("-_.~:|")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_REST = _ASCII_LETTERS | frozenset("0123456789_/")
_DIGITS = frozenset("0123456789")
_NONZERO_DIGITS = frozenset("123456789")
_WHITESPACE = frozenset(" \t\r\n")


def _is_pointer_char(char: str) -> bool:
    return char.isalpha() or char.isnumeric() or char in _POINTER_PUNCTUATION


def _rule(label: str):
    """Run a parser method as a pigeon rule: errors recorded inside it name ``rule <label>``."""
    def decorate(method):
        @functools.wraps(method)
        def run(self, index, *args):
            self.rules.append(label)
            try:
                return method(self, index, *args)
            finally:
                self.rules.pop()
        return run
    return decorate


def _memoized(method):
    """Cache a rule's result per position: pigeon re-parses the same operands once per alternative."""
    @functools.wraps(method)
    def run(self, index):
        key = (method.__name__, index)
        if key not in self.memo:
            self.memo[key] = method(self, index)
        return self.memo[key]
    return run


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.length = len(text)
        self.max_fail = 0
        self.expected: set = set()
        self.inverted = False
        self.errors: list = []
        self.rules: list = []
        self.memo: dict = {}

    # positions and errors ---------------------------------------------------------------------------

    def position(self, index: int) -> str:
        """pigeon's ``line:col (offset)``; offset in UTF-8 bytes, col in characters, a newline is col 0."""
        before = self.text[:index]
        line = before.count("\n") + 1
        if index < self.length and self.text[index] == "\n":
            line, col = line + 1, 0
        else:
            col = index - before.rfind("\n")
        offset = len(before.encode("utf-8", "surrogatepass"))
        return f"{line}:{col} ({offset})"

    def add_error(self, index: int, message: str) -> None:
        prefix = self.position(index)
        if self.rules:
            prefix += f": rule {self.rules[-1]}"
        self.errors.append(f"{prefix}: {message}")

    def track(self, matched: bool, index: int, want: str) -> None:
        if matched is not self.inverted or index < self.max_fail:
            return
        if index > self.max_fail:
            self.max_fail = index
            self.expected = set()
        self.expected.add("!" + want if self.inverted else want)

    # matchers ---------------------------------------------------------------------------------------

    def literal(self, index: int, text: str) -> int:
        want = go_quote(text)
        if self.text.startswith(text, index):
            self.track(True, index, want)
            return index + len(text)
        self.track(False, index, want)
        return -1

    def char_class(self, index: int, accepts, want: str) -> int:
        if index < self.length and accepts(self.text[index]):
            self.track(True, index, want)
            return index + 1
        self.track(False, index, want)
        return -1

    def any_char(self, index: int) -> int:
        if index < self.length:
            self.track(True, index, ".")
            return index + 1
        self.track(False, index, ".")
        return -1

    def end_of_input(self, index: int) -> int:
        """EOF <- !."""
        self.inverted = not self.inverted
        matched = self.any_char(index)
        self.inverted = not self.inverted
        return index if matched < 0 else -1

    # whitespace -------------------------------------------------------------------------------------

    @_rule('"whitespace"')
    def whitespace(self, index: int) -> int:
        end = self.char_class(index, _WHITESPACE.__contains__, _WS_WANT)
        while end >= 0:
            following = self.char_class(end, _WHITESPACE.__contains__, _WS_WANT)
            if following < 0:
                break
            end = following
        return end

    def optional_whitespace(self, index: int) -> int:
        end = self.whitespace(index)
        return index if end < 0 else end

    def keywords(self, index: int, *words: str, trailing: bool = True) -> int:
        """``_ "w1" _ "w2" ... _``: keywords surrounded by mandatory whitespace."""
        for word in words:
            index = self.whitespace(index)
            if index < 0:
                return -1
            index = self.literal(index, word)
            if index < 0:
                return -1
        if trailing:
            index = self.whitespace(index)
        return index

    # expressions ------------------------------------------------------------------------------------

    @_rule("Input")
    def parse_input(self, index: int):
        start = self.optional_whitespace(index)
        position = self.literal(start, "(")
        if position >= 0:
            inner = self.or_expression(self.optional_whitespace(position))
            if inner is not None:
                position, expression = inner
                position = self.literal(self.optional_whitespace(position), ")")
                if position >= 0 and self.end_of_input(self.optional_whitespace(position)) >= 0:
                    return expression
        inner = self.or_expression(start)
        if inner is not None:
            position, expression = inner
            if self.end_of_input(self.optional_whitespace(position)) >= 0:
                return expression
        return None

    def binary(self, index: int, word: str, operand, operator: str):
        """pigeon's right-recursive ``left _ word _ right / left``, parsed as a loop (no deep recursion)."""
        first = operand(index)
        if first is None:
            return None
        position, operands = first[0], [first[1]]
        while True:
            after_word = self.keywords(position, word)
            following = operand(after_word) if after_word >= 0 else None
            if following is None:
                break
            position = following[0]
            operands.append(following[1])
        expression = operands[-1]
        for left in reversed(operands[:-1]):
            expression = Binary(operator, left, expression)
        return position, expression

    @_memoized
    @_rule("OrExpression")
    def or_expression(self, index: int):
        return self.binary(index, "or", self.and_expression, "or")

    @_memoized
    @_rule("AndExpression")
    def and_expression(self, index: int):
        return self.binary(index, "and", self.not_expression, "and")

    @_memoized
    @_rule("NotExpression")
    def not_expression(self, index: int):
        position = self.literal(index, "not")
        if position >= 0:
            position = self.whitespace(position)
            if position >= 0:
                inner = self.not_expression(position)
                if inner is not None:
                    operand = inner[1]
                    return inner[0], (operand.operand if isinstance(operand, Not) else Not(operand))
        return self.parenthesized(index)

    @_memoized
    @_rule('"grouping"')
    def parenthesized(self, index: int):
        opened = self.literal(index, "(")
        if opened >= 0:
            inner = self.or_expression(self.optional_whitespace(opened))
            if inner is not None:
                closed = self.literal(self.optional_whitespace(inner[0]), ")")
                if closed >= 0:
                    return closed, inner[1]
        found = self.match_expression(index)
        if found is not None:
            return found
        found = self.collection_expression(index)
        if found is not None:
            return found
        if opened >= 0:
            inner = self.or_expression(self.optional_whitespace(opened))
            if inner is not None:
                position = self.optional_whitespace(inner[0])
                self.inverted = not self.inverted
                closing = self.literal(position, ")")
                self.inverted = not self.inverted
                if closing < 0:
                    self.add_error(position, "Unmatched parentheses")
        return None

    @_rule('"match"')
    def match_expression(self, index: int):
        for alternative in (self.match_selector_op_value, self.match_selector_op, self.match_value_op_selector):
            found = alternative(index)
            if found is not None:
                return found
        return None

    @_rule('"match"')
    def match_selector_op_value(self, index: int):
        selector = self.selector(index)
        if selector is None:
            return None
        position, selected = selector
        operator = self.first_operator(position, (
            (EQUAL, lambda at: self.symbol_operator(at, "==")),
            (NOT_EQUAL, lambda at: self.symbol_operator(at, "!=")),
            (IN, lambda at: self.keywords(at, "contains")),
            (NOT_IN, lambda at: self.keywords(at, "not", "contains")),
            (MATCHES, lambda at: self.keywords(at, "matches")),
            (NOT_MATCHES, lambda at: self.keywords(at, "not", "matches")),
        ))
        if operator is None:
            return None
        position, name = operator
        value = self.value(position)
        if value is None:
            return None
        return value[0], Match(name, selected, value[1])

    @_rule('"match"')
    def match_selector_op(self, index: int):
        selector = self.selector(index)
        if selector is None:
            return None
        operator = self.first_operator(selector[0], (
            (IS_EMPTY, lambda at: self.keywords(at, "is", "empty", trailing=False)),
            (IS_NOT_EMPTY, lambda at: self.keywords(at, "is", "not", "empty", trailing=False)),
        ))
        if operator is None:
            return None
        return operator[0], Match(operator[1], selector[1], None)

    @_rule('"match"')
    def match_value_op_selector(self, index: int):
        in_operators = (
            (IN, lambda at: self.keywords(at, "in")),
            (NOT_IN, lambda at: self.keywords(at, "not", "in")),
        )
        for attempt in range(2):
            value = self.value(index)
            if value is None:
                return None
            operator = self.first_operator(value[0], in_operators)
            if operator is None:
                return None
            if attempt == 0:
                selector = self.selector(operator[0])
                if selector is not None:
                    return selector[0], Match(operator[1], selector[1], value[1])
                continue
            self.inverted = not self.inverted
            selector = self.selector(operator[0])
            self.inverted = not self.inverted
            if selector is None:
                self.add_error(operator[0], "Invalid selector")
        return None

    def symbol_operator(self, index: int, symbol: str) -> int:
        position = self.literal(self.optional_whitespace(index), symbol)
        return position if position < 0 else self.optional_whitespace(position)

    @staticmethod
    def first_operator(index: int, alternatives):
        for name, parse in alternatives:
            position = parse(index)
            if position >= 0:
                return position, name
        return None

    # any / all (v0.1.13) ------------------------------------------------------------------------------

    @_rule('"collection"')
    def collection_expression(self, index: int):
        operator = None
        for word in ("any", "all"):
            position = self.literal(index, word)
            if position >= 0:
                operator = word.upper()
                break
        if operator is None:
            return None
        position = self.whitespace(position)
        selector = self.selector(position) if position >= 0 else None
        if selector is None:
            return None
        position = self.keywords(selector[0], "as")
        binding = self.name_binding(position) if position >= 0 else None
        if binding is None:
            return None
        position = self.literal(self.optional_whitespace(binding[0]), "{")
        if position < 0:
            return None
        inner = self.or_expression(self.optional_whitespace(position))
        if inner is None:
            return None
        position = self.literal(self.optional_whitespace(inner[0]), "}")
        if position < 0:
            return None
        return position, Collection(operator, selector[1], binding[1], inner[1])

    @_rule("CollectionNameBinding")
    def name_binding(self, index: int):
        placeholder = self.literal(index, "_")
        if placeholder >= 0:
            value = self.binding_second(placeholder, allow_placeholder=False)
            if value is not None:
                return value[0], Binding("Value", value=value[1])
        first = self.identifier(index)
        if first is None:
            return None
        second = self.binding_second(first[0], allow_placeholder=True)
        if second is None:
            return first[0], Binding("Default", default=first[1])
        if second[1] is None:
            return second[0], Binding("Index", index=first[1])
        return second[0], Binding("Index & Value", index=first[1], value=second[1])

    def binding_second(self, index: int, allow_placeholder: bool):
        """``_? "," _? (Identifier | "_")``; the name, or None for the ``_`` placeholder."""
        position = self.literal(self.optional_whitespace(index), ",")
        if position < 0:
            return None
        position = self.optional_whitespace(position)
        if allow_placeholder:
            placeholder = self.literal(position, "_")
            if placeholder >= 0:
                return placeholder, None
        return self.identifier(position)

    # selectors and values ---------------------------------------------------------------------------

    @_rule('"selector"')
    def selector(self, index: int):
        first = self.identifier(index)
        if first is not None:
            position, parts = first[0], [first[1]]
            while True:
                segment = self.selector_segment(position)
                if segment is None:
                    break
                position = segment[0]
                parts.append(segment[1])
            return position, Selector(tuple(parts))
        position = self.literal(index, '"')
        if position < 0:
            return None
        segments = []
        while True:
            segment = self.pointer_segment(position)
            if segment is None:
                break
            position, text = segment
            segments.append(text)
        position = self.literal(position, '"')
        if position < 0:
            return None
        # pointerstructure.Parse("/" + segments) decodes ~1 and ~0 in each part.
        parts = "/".join(segments).split("/")
        return position, Selector(tuple(p.replace("~1", "/").replace("~0", "~") for p in parts), json_pointer=True)

    def pointer_segment(self, index: int):
        position = self.literal(index, "/")
        if position < 0:
            return None
        end = self.char_class(position, _is_pointer_char, _POINTER_SEGMENT_WANT)
        if end < 0:
            return None
        while True:
            following = self.char_class(end, _is_pointer_char, _POINTER_SEGMENT_WANT)
            if following < 0:
                break
            end = following
        return end, self.text[position:end]

    @_rule("Identifier")
    def identifier(self, index: int):
        end = self.char_class(index, _ASCII_LETTERS.__contains__, _IDENT_START_WANT)
        if end < 0:
            return None
        while True:
            following = self.char_class(end, _IDENT_REST.__contains__, _IDENT_REST_WANT)
            if following < 0:
                break
            end = following
        return end, self.text[index:end]

    @_rule("SelectorOrIndex")
    def selector_segment(self, index: int):
        dot = self.literal(index, ".")
        if dot >= 0:
            name = self.identifier(dot)
            if name is not None:
                return name
        found = self.index_expression(index)
        if found is not None:
            return found
        if dot >= 0:
            end = self.char_class(dot, _DIGITS.__contains__, "[0-9]")
            if end >= 0:
                while True:
                    following = self.char_class(end, _DIGITS.__contains__, "[0-9]")
                    if following < 0:
                        break
                    end = following
                return end, self.text[dot:end]
        return None

    @_rule('"index"')
    def index_expression(self, index: int):
        opened = self.literal(index, "[")
        if opened < 0:
            return None
        position = self.optional_whitespace(opened)
        literal = self.string_literal(position)
        if literal is not None:
            closed = self.literal(self.optional_whitespace(literal[0]), "]")
            if closed >= 0:
                return closed, literal[1]
        # "[" _? !StringLiteral &{Invalid index}
        self.inverted = not self.inverted
        absent = self.string_literal(position) is None
        self.inverted = not self.inverted
        if absent:
            self.add_error(position, "Invalid index")
            return None
        literal = self.string_literal(position)
        if literal is not None:
            after = self.optional_whitespace(literal[0])
            self.inverted = not self.inverted
            closing = self.literal(after, "]")
            self.inverted = not self.inverted
            if closing < 0:
                self.add_error(after, "Unclosed index expression")
        return None

    @_rule('"value"')
    def value(self, index: int):
        selector = self.selector(index)
        if selector is not None:
            return selector[0], str(selector[1])
        number = self.number_literal(index)
        if number is not None:
            return number
        literal = self.string_literal(index)
        if literal is not None:
            return literal
        return None

    @_rule('"number"')
    def number_literal(self, index: int):
        for attempt in range(2):
            position = self.literal(index, "-")
            position = self.integer_or_float(index if position < 0 else position)
            if position < 0:
                return None
            if attempt == 0:
                if self.after_number(position):
                    return position, self.text[index:position]
                continue
            self.inverted = not self.inverted
            follows = self.after_number(position)
            self.inverted = not self.inverted
            if not follows:
                self.add_error(position, "Invalid number literal")
        return None

    def after_number(self, index: int) -> bool:
        """AfterNumbers <- &(_ / EOF / ")")"""
        return (self.whitespace(index) >= 0 or self.end_of_input(index) >= 0
                or self.literal(index, ")") >= 0)

    def integer_or_float(self, index: int) -> int:
        position = self.literal(index, "0")
        if position < 0:
            position = self.char_class(index, _NONZERO_DIGITS.__contains__, "[1-9]")
            if position < 0:
                return -1
            position = self.digits(position)
        dot = self.literal(position, ".")
        if dot >= 0:
            fraction = self.char_class(dot, _DIGITS.__contains__, "[0-9]")
            if fraction >= 0:
                return self.digits(fraction)
        return position

    def digits(self, index: int) -> int:
        while True:
            following = self.char_class(index, _DIGITS.__contains__, "[0-9]")
            if following < 0:
                return index
            index = following

    @_rule('"string"')
    def string_literal(self, index: int):
        for quote in ("`", '"'):
            position = self.literal(index, quote)
            if position < 0:
                continue
            position = self.string_chars(position, quote)
            closed = self.literal(position, quote)
            if closed >= 0:
                try:
                    return closed, _unquote(self.text[index:closed])
                except _UnquoteError:
                    # The action's error is recorded (failing the parse) and its value, "", is used on.
                    self.add_error(index, "invalid syntax")
                    return closed, ""
        for quote in ("`", '"'):
            position = self.literal(index, quote)
            if position < 0:
                continue
            position = self.string_chars(position, quote)
            if self.end_of_input(position) >= 0:
                self.add_error(position, "Unterminated string literal")
            break
        return None

    def string_chars(self, index: int, quote: str) -> int:
        """(!quote .)*"""
        while True:
            self.inverted = not self.inverted
            is_quote = self.literal(index, quote) >= 0
            self.inverted = not self.inverted
            if is_quote:
                return index
            following = self.any_char(index)
            if following < 0:
                return index
            index = following

    # entry point ------------------------------------------------------------------------------------

    def parse(self):
        try:
            expression = self.parse_input(0)
        except RecursionError:
            # pigeon has no depth limit; Python does. Not a Go text, but a clear 400 instead of a crash.
            raise FilterParseError(f"{self.position(0)}: expression nested too deeply") from None
        if expression is None and not self.errors:
            self.errors.append(f"{self.position(self.max_fail)}: no match found, expected: {self.expected_text()}")
        if self.errors:
            raise FilterParseError("\n".join(dict.fromkeys(self.errors)))
        return expression

    def expected_text(self) -> str:
        expected = set(self.expected)
        eof = "!." in expected
        expected.discard("!.")
        ordered = sorted(expected, key=lambda want: want.encode("utf-8"))
        if eof:
            ordered.append("EOF")
        if len(ordered) <= 1:
            return "".join(ordered)
        return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def parse(text: str):
    """The AST of a filter expression; raises FilterParseError."""
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------------
# Go value coercion (strconv)

class _CoerceError(Exception):
    pass


def _num_error(function: str, raw: str, reason: str) -> _CoerceError:
    return _CoerceError(f"strconv.{function}: parsing {go_quote(raw)}: {reason}")


def _underscore_ok(text: str) -> bool:
    """strconv.underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    if text[:1] in ("+", "-"):
        text = text[1:]
    position = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        position, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[position:]:
        if char.isdigit() and char.isascii() or hexadecimal and char.lower() in "abcdef":
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _parse_unsigned(raw: str, digits: str, function: str, limit: int) -> int:
    """strconv.ParseUint(digits, 0, 64) without a sign; errors name ``raw`` and ``function``."""
    if not digits:
        raise _num_error(function, raw, "invalid syntax")
    base, body = 10, digits
    if digits[0] == "0":
        prefix = digits[1:2].lower()
        if len(digits) >= 3 and prefix in ("b", "o", "x"):
            base, body = {"b": 2, "o": 8, "x": 16}[prefix], digits[2:]
        else:
            base, body = 8, digits[1:]
    value = 0
    underscores = False
    for char in body:
        if char == "_":
            underscores = True
            continue
        digit = int(char, 16) if char.isascii() and char.isalnum() and char.lower() in "0123456789abcdef" else 99
        if digit >= base:
            raise _num_error(function, raw, "invalid syntax")
        value = value * base + digit
    if underscores and not _underscore_ok(digits):
        raise _num_error(function, raw, "invalid syntax")
    if value > limit:
        raise _num_error(function, raw, "value out of range")
    return value


def parse_go_int(raw: str) -> int:
    """strconv.ParseInt(raw, 0, 64)."""
    negative = raw[:1] == "-"
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    value = _parse_unsigned(raw, digits, "ParseInt", 1 << 63 if negative else (1 << 63) - 1)
    return -value if negative else value


def parse_go_uint(raw: str) -> int:
    """strconv.ParseUint(raw, 0, 64)."""
    return _parse_unsigned(raw, raw, "ParseUint", (1 << 64) - 1)


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def parse_go_bool(raw: str) -> bool:
    """strconv.ParseBool."""
    if raw in _GO_BOOLS:
        return _GO_BOOLS[raw]
    raise _num_error("ParseBool", raw, "invalid syntax")


_DECIMAL_FLOAT = re.compile(r"[+-]?(?=\.?[0-9])[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?\Z")
_HEX_FLOAT = re.compile(r"[+-]?0[xX](?=\.?[0-9a-fA-F])[0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?[pP][+-]?[0-9_]+\Z")
_SPECIAL_FLOAT = re.compile(r"(?:[+-]?(?:inf|infinity)|nan)\Z", re.IGNORECASE)


def parse_go_float(raw: str) -> float:
    """strconv.ParseFloat(raw, 64)."""
    if _SPECIAL_FLOAT.match(raw):
        return float(raw)
    if _HEX_FLOAT.match(raw) and _underscore_ok(raw):
        value = float.fromhex(raw.replace("_", ""))
    elif _DECIMAL_FLOAT.match(raw) and ("_" not in raw or _underscore_ok(raw)):
        value = float(raw.replace("_", ""))
    else:
        raise _num_error("ParseFloat", raw, "invalid syntax")
    if math.isinf(value):
        raise _num_error("ParseFloat", raw, "value out of range")
    return value


# --------------------------------------------------------------------------------------------------
# Path facts (which dicts are Go maps, which ints are unsigned)

class _PathPatterns:
    def __init__(self, patterns: Iterable[str]):
        self.by_length: dict = {}
        for pattern in patterns:
            parts = tuple(pattern.split("."))
            self.by_length.setdefault(len(parts), []).append(parts)
        self.matches = functools.lru_cache(maxsize=4096)(self._matches)

    def _matches(self, path: tuple) -> bool:
        for pattern in self.by_length.get(len(path), ()):
            if all(want == "*" or want == part for want, part in zip(pattern, path)):
                return True
        return False


# --------------------------------------------------------------------------------------------------
# Evaluation: the AST is compiled into closures ``check(datum, variables) -> bool``.

class _NotPresent(Exception):
    """The selector names a missing key of a map (go-bexpr's "not present")."""


def _kind_of(value, path: tuple, facts) -> str:
    """Go reflect.Kind name of a value at ``path``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "uint64" if facts.uints.matches(path) else "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map" if facts.maps.matches(path) else "struct"
    if isinstance(value, (list, tuple)):
        return "slice"
    if value is None:
        return "map" if facts.maps.matches(path) else "invalid"
    return "invalid"


class _Facts:
    def __init__(self, map_paths, uint_paths):
        self.maps = _PathPatterns(map_paths)
        self.uints = _PathPatterns(uint_paths)


def _slice_index(part: str, length: int) -> int:
    """pointerstructure's string -> int coercion (mapstructure weak decode) and bounds check."""
    if part == "":
        index = 0
    else:
        try:
            index = parse_go_int(part)
        except _CoerceError as err:
            raise LookupError(f"cannot parse '' as int: {err}") from None
    if index < 0 or index >= length:
        raise LookupError(f"index {index} is out of range (length = {length})")
    return index


def _lookup(datum, parts: tuple, facts: _Facts):
    """pointerstructure.Get plus go-bexpr's not-present rule; returns the value or raises."""
    current = datum
    for position, part in enumerate(parts):
        if isinstance(current, dict):
            if part in current:
                current = current[part]
                continue
            if facts.maps.matches(parts[:position]):
                _raise_missing_key(parts, position, f"couldn't find key {go_quote(part)}")
            _raise_missing_key(parts, position, f"couldn't find key: struct field with name {go_quote(part)}")
        elif isinstance(current, (list, tuple)):
            try:
                current = current[_slice_index(part, len(current))]
            except LookupError as err:
                raise FilterEvaluationError(
                    f"error finding value in datum: {_pointer_text(parts)} at part {position}: {err}") from None
        elif current is None and facts.maps.matches(parts[:position]):
            _raise_missing_key(parts, position, f"couldn't find key {go_quote(part)}")
        else:
            kind = _kind_of(current, parts[:position], facts)
            raise FilterEvaluationError(f"error finding value in datum: {_pointer_text(parts)}: at part {position}, "
                                        f"invalid value kind: {kind}")
    return current


def _raise_missing_key(parts: tuple, position: int, reason: str):
    # evaluateNotPresent: only a missing *last* element whose parent is a map counts as not present.
    if position == len(parts) - 1 and len(parts) >= 2 and reason.startswith("couldn't find key \""):
        raise _NotPresent
    raise FilterEvaluationError(f"error finding value in datum: {_pointer_text(parts)} at part {position}: {reason}")


@dataclass(frozen=True)
class _Variable:
    name: str
    path: Optional[tuple]  # the (unresolved) selector path it aliases, or None for a key/index value
    value: object = None


def _resolve(parts: tuple, variables: tuple):
    """go-bexpr getValue's local-variable pass: (path, None) or (None, (value,)) for a key/index variable."""
    for variable in reversed(variables):
        if parts and parts[0] == variable.name:
            if variable.path is None:
                if len(parts) > 1:
                    type_name = "int" if isinstance(variable.value, int) else "string"
                    raise FilterEvaluationError(f"{_pointer_text(parts[:1])} references a {type_name} so "
                                                f"{_pointer_text(parts)} is invalid")
                return None, (variable.value,)
            parts = variable.path + parts[1:]
    return parts, None


def _getter(selector: Selector, facts: _Facts) -> Callable:
    """A function (datum, variables) -> (value, resolved path or None for a key/index variable).

    Raises _NotPresent or FilterEvaluationError.
    """
    parts = selector.parts
    if len(parts) == 1:
        get_global = _top_level_getter(parts, facts)
    else:
        def get_global(datum):
            return _lookup(datum, parts, facts)

    def get(datum, variables):
        if not variables:
            return get_global(datum), parts
        path, concrete = _resolve(parts, variables)
        if concrete is not None:
            return concrete[0], None
        return _lookup(datum, path, facts), path

    return get


def _top_level_getter(parts: tuple, facts: _Facts) -> Callable:
    """The fast path for a field of the datum itself (always a Go struct)."""
    part = parts[0]
    missing = (f"error finding value in datum: {_pointer_text(parts)} at part 0: "
               f"couldn't find key: struct field with name {go_quote(part)}")

    def get(datum):
        if isinstance(datum, dict):
            try:
                return datum[part]
            except KeyError:
                raise FilterEvaluationError(missing) from None
        return _lookup(datum, parts, facts)

    return get


def _kind(value, path, facts) -> str:
    if path is None:  # a key/index variable
        return "int" if isinstance(value, int) else "string"
    return _kind_of(value, path, facts)


class _MatchValue:
    """The raw match value and its coercions per kind (go-bexpr getMatchExprValue), computed once."""

    def __init__(self, raw: Optional[str]):
        self.raw = raw
        self.cache: dict = {}

    def for_kind(self, kind: str):
        cached = self.cache.get(kind)
        if cached is None:
            cached = self.cache[kind] = self._coerce(kind)
        if isinstance(cached, _CoerceError):
            raise FilterEvaluationError(f"error getting match value in expression: {cached}")
        return cached

    def _coerce(self, kind: str):
        parsers = {"bool": parse_go_bool, "int": parse_go_int, "uint64": parse_go_uint, "float64": parse_go_float}
        parser = parsers.get(kind)
        if parser is None:
            return self.raw
        try:
            return parser(self.raw)
        except _CoerceError as err:
            return err


_PRIMITIVE_KINDS = frozenset({"bool", "int", "uint64", "float64", "string"})
_GO_TYPE_NAMES = {"map": "map[string]string", "slice": "[]string", "struct": "struct"}


def _equal(value, kind: str, match: _MatchValue) -> bool:
    if kind not in _PRIMITIVE_KINDS:
        raise FilterEvaluationError("unable to find suitable primitive comparison function for matching")
    return match.for_kind(kind) == value


def _contains(value, kind: str, match: _MatchValue, selector: Selector, facts: _Facts, path) -> bool:
    if value is None and kind in ("invalid", "map"):
        return False  # a nil slice or map holds nothing
    raw = match.for_kind(kind)
    if kind == "string":
        return raw in value
    if kind == "map":
        return raw in value
    if kind == "slice":
        return _slice_contains(value, match, facts, path)
    raise FilterEvaluationError(f"Cannot perform in/contains operations on type {kind} for selector: "
                                f"{go_quote(str(selector))}")


def _slice_contains(items, match: _MatchValue, facts: _Facts, path) -> bool:
    if not items:
        return False
    element_path = (path or ()) + ("*",)
    kind = _kind_of(items[0], element_path, facts)
    if kind == "invalid" or kind in ("map", "struct", "slice"):
        raise FilterEvaluationError('unable to find suitable primitive comparison function for "in" comparison')
    wanted = match.for_kind(kind)
    return any(item == wanted and (kind == "bool") == isinstance(item, bool) for item in items)


def _is_empty(value, kind: str) -> bool:
    if value is None:
        return True  # a nil slice or map
    if kind in ("string", "slice", "map"):
        return len(value) == 0
    raise FilterEvaluationError(f"reflect: call of reflect.Value.Len on {kind} Value")


_UNSUPPORTED_RE2 = re.compile(r"\\[1-9]|\(\?[=!]|\(\?<[=!]")


def _compile_regexp(raw: str):
    """Go regexp.Compile (RE2) approximated with Python re."""
    failure = f"Failed to compile regular expression {go_quote(raw)}: "
    unsupported = _UNSUPPORTED_RE2.search(raw)
    if unsupported:
        raise FilterEvaluationError(failure + f"error parsing regexp: invalid or unsupported Perl syntax: "
                                              f"`{unsupported.group(0)}`")
    translated = _translate_re2(raw)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as err:
        raise FilterEvaluationError(failure + "error parsing regexp: " + _go_regexp_error(raw, translated, err)) from None


def _go_regexp_error(raw: str, translated: str, err: re.error) -> str:
    """Go's regexp/syntax wording for the common mistakes; Python's own text otherwise."""
    message = err.msg
    at = translated[err.pos:] if err.pos is not None else ""
    if message.startswith("missing ), unterminated subpattern"):
        return f"missing closing ): `{raw}`"
    if message.startswith("unbalanced parenthesis"):
        return f"unexpected ): `{raw}`"
    if message.startswith("unterminated character set"):
        return f"missing closing ]: `{at}`"
    if message.startswith("nothing to repeat"):
        return f"missing argument to repetition operator: `{at[:1]}`"
    if message.startswith("multiple repeat"):
        return f"invalid nested repetition operator: `{at[:2]}`"
    if message.startswith("bad escape"):
        return f"invalid escape sequence: `{at[:2]}`"
    return str(err)


def _translate_re2(pattern: str) -> str:
    """RE2's \\z is Python's \\Z; without (?m) RE2's $ matches only at the very end."""
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    out = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            pair = pattern[index:index + 2]
            out.append("\\Z" if pair == "\\z" and not in_class else pair)
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[index + 1:index + 2] == "]" or pattern[index + 1:index + 3] == "^]":
                closing = pattern.index("]", index + 1)
                out.append(pattern[index:closing + 1])
                index = closing + 1
                continue
        elif char == "$" and not multiline:
            out.append("\\Z")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


class _Regexp:
    def __init__(self, raw: str):
        self.raw = raw
        self.compiled = None

    def search(self, value, kind: str) -> bool:
        if kind != "string":
            type_name = _GO_TYPE_NAMES.get(kind, kind)
            raise FilterEvaluationError(f"Value of type {type_name} is not convertible to []byte")
        if self.compiled is None:
            self.compiled = _compile_regexp(self.raw)
        return self.compiled.search(value) is not None


def _compile_match(node: Match, facts: _Facts):
    get = _getter(node.selector, facts)
    operator = node.operator
    not_present = _NOT_PRESENT[operator]
    match = _MatchValue(node.value)
    negate = operator in (NOT_EQUAL, NOT_IN, IS_NOT_EMPTY, NOT_MATCHES)
    selector = node.selector

    if operator in (EQUAL, NOT_EQUAL):
        def test(value, path):
            kind = "string" if isinstance(value, str) else _kind(value, path, facts)
            return _equal(value, kind, match)
    elif operator in (IN, NOT_IN):
        def test(value, path):
            return _contains(value, _kind(value, path, facts), match, selector, facts, path)
    elif operator in (IS_EMPTY, IS_NOT_EMPTY):
        def test(value, path):
            return _is_empty(value, _kind(value, path, facts))
    else:
        regexp = _Regexp(node.value)

        def test(value, path):
            return regexp.search(value, _kind(value, path, facts))

    def check(datum, variables):
        try:
            value, path = get(datum, variables)
        except _NotPresent:
            return not_present
        return test(value, path) is not negate

    return check


def _compile_collection(node: Collection, facts: _Facts):
    get = _getter(node.selector, facts)
    inner = _compile(node.inner, facts)
    binding = node.binding
    want_all = node.operator == "ALL"
    raw_path = node.selector.parts

    def element_variables(key, position, is_map):
        made = []
        if is_map:
            if binding.default:
                made.append(_Variable(binding.default, None, key))
            if binding.index:
                made.append(_Variable(binding.index, None, key))
            if binding.value:
                made.append(_Variable(binding.value, raw_path + (key,)))
        else:
            if binding.index:
                made.append(_Variable(binding.index, None, position))
            element_path = raw_path + (str(position),)
            if binding.default:
                made.append(_Variable(binding.default, element_path))
            if binding.value:
                made.append(_Variable(binding.value, element_path))
        return tuple(made)

    def check(datum, variables):
        try:
            value, path = get(datum, variables)
        except _NotPresent:
            return want_all
        kind = _kind(value, path, facts)
        if value is None and kind in ("map", "invalid"):
            return want_all  # a nil map or slice has no elements
        if kind == "map":
            keys = list(value)
        elif kind == "slice":
            keys = list(range(len(value)))
        else:
            raise FilterEvaluationError(f"{node.selector} is not a list or a map")
        for position, key in enumerate(keys):
            if binding.mode == "Index & Value" and binding.index == binding.value:
                raise FilterEvaluationError(f"{go_quote(binding.index)} cannot be used as a placeholder "
                                            f"for both the index and the value")
            scope = (variables or ()) + element_variables(key, position, kind == "map")
            if inner(datum, scope) is not want_all:
                return not want_all
        return want_all

    return check


def _compile(node, facts: _Facts):
    if isinstance(node, Match):
        return _compile_match(node, facts)
    if isinstance(node, Not):
        operand = _compile(node.operand, facts)
        return lambda datum, variables: not operand(datum, variables)
    if isinstance(node, Binary):
        return _compile_binary(node, facts)
    if isinstance(node, Collection):
        return _compile_collection(node, facts)
    raise TypeError(f"not a bexpr AST node: {node!r}")


def _compile_binary(node: Binary, facts: _Facts):
    """and/or with short-circuit; a right-nested chain of one operator becomes one loop."""
    operands = []
    while isinstance(node.right, Binary) and node.right.operator == node.operator:
        operands.append(node.left)
        node = node.right
    operands += [node.left, node.right]
    checks = [_compile(operand, facts) for operand in operands]
    if len(checks) == 2:
        left, right = checks
        if node.operator == "and":
            return lambda datum, variables: left(datum, variables) and right(datum, variables)
        return lambda datum, variables: left(datum, variables) or right(datum, variables)
    stop_at = node.operator == "or"

    def check(datum, variables):
        for operand in checks:
            if operand(datum, variables) is stop_at:
                return stop_at
        return not stop_at

    return check


class Filter:
    """A compiled filter expression; ``evaluate(datum)`` says whether the datum matches."""

    def __init__(self, text: str, ast, facts: _Facts):
        self.text = text
        self.ast = ast
        self._check = _compile(ast, facts)

    def evaluate(self, datum) -> bool:
        return self._check(datum, ())

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


@functools.lru_cache(maxsize=256)
def _compile_cached(text: str, map_paths: frozenset, uint_paths: frozenset) -> Filter:
    return Filter(text, parse(text), _Facts(map_paths, uint_paths))


def compile_filter(text: str, map_paths: Iterable[str] = ALLOCATION_MAP_PATHS,
                   uint_paths: Iterable[str] = ALLOCATION_UINT_PATHS) -> Filter:
    """Parse and compile a go-bexpr expression (cached); raises FilterParseError."""
    return _compile_cached(text, frozenset(map_paths), frozenset(uint_paths))
