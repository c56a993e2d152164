# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""go-bexpr v0.1.13 emulation (tests/emulator/bexpr.py): grammar, pigeon error texts, evaluation semantics.

Parse cases and error texts marked "go-bexpr" are the expectations of go-bexpr's own grammar tests
(grammar/grammar_test.go); evaluation texts follow evaluate.go and pointerstructure's get.go.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.emulator import bexpr  # noqa: E402  (needs the repo root on sys.path)
from tests.emulator.bexpr import (  # noqa: E402
    EQUAL, IN, IS_EMPTY, IS_NOT_EMPTY, MATCHES, NOT_EQUAL, NOT_IN, NOT_MATCHES,
    Binary, Binding, Collection, Match, Not, Selector,
)


def sel(*parts: str) -> Selector:
    return Selector(tuple(parts))


def ptr(*parts: str) -> Selector:
    return Selector(tuple(parts), json_pointer=True)


# ---------------------------------------------------------------------------------------------------
# Parsing

PARSE_CASES = [
    ("foo == 3", Match(EQUAL, sel("foo"), "3")),
    ("foo==3", Match(EQUAL, sel("foo"), "3")),
    ("foo != xyz", Match(NOT_EQUAL, sel("foo"), "xyz")),
    ("list is empty", Match(IS_EMPTY, sel("list"), None)),
    ("list is not empty", Match(IS_NOT_EMPTY, sel("list"), None)),
    ("foo in bar", Match(IN, sel("bar"), "foo")),
    ("foo not in bar", Match(NOT_IN, sel("bar"), "foo")),
    ("bar contains foo", Match(IN, sel("bar"), "foo")),
    ("bar not contains foo", Match(NOT_IN, sel("bar"), "foo")),
    ("foo matches bar", Match(MATCHES, sel("foo"), "bar")),
    ("foo not matches bar", Match(NOT_MATCHES, sel("foo"), "bar")),
    ('foo == "bar"', Match(EQUAL, sel("foo"), "bar")),
    ("foo == `bar`", Match(EQUAL, sel("foo"), "bar")),
    ('"foo" not in bar', Match(NOT_IN, sel("bar"), "foo")),
    ("foo == 0.2", Match(EQUAL, sel("foo"), "0.2")),
    ("foo == -0.2", Match(EQUAL, sel("foo"), "-0.2")),
    ("foo == -7", Match(EQUAL, sel("foo"), "-7")),
    ("foo == bar.baz", Match(EQUAL, sel("foo"), "bar.baz")),
    ('foo == bar["x y"]', Match(EQUAL, sel("foo"), "bar.x y")),
    ("foo/bar == 3", Match(EQUAL, sel("foo/bar"), "3")),
    ('"/foo" == 3', Match(EQUAL, ptr("foo"), "3")),
    ('"/Job/Meta/a~1b~0c" == x', Match(EQUAL, ptr("Job", "Meta", "a/b~c"), "x")),
    ('environment in "/hy-phen/under_score/pi|pe/do.t/ti~lde/co:lon"',
     Match(IN, ptr("hy-phen", "under_score", "pi|pe", "do.t", "ti~lde", "co:lon"), "environment")),
    ('`environment` in foo.bar["meta"].tags[\t`ENV` ]',
     Match(IN, sel("foo", "bar", "meta", "tags", "ENV"), "environment")),
    ('environment in foo["abc-def ghi åß∂ƒ"]', Match(IN, sel("foo", "abc-def ghi åß∂ƒ"), "environment")),
    ("Job.TaskGroups.0.Name == web", Match(EQUAL, sel("Job", "TaskGroups", "0", "Name"), "web")),
    ("\t\r\n  foo \t\r\n == \t\r\n x \t\r\n", Match(EQUAL, sel("foo"), "x")),
    ("\t\r\n ( \t\r\n foo \t\r\n == \t\r\n x \t\r\n ) \t\r\n", Match(EQUAL, sel("foo"), "x")),
    ("not not foo == 3", Match(EQUAL, sel("foo"), "3")),
    ("not prod in tags", Not(Match(IN, sel("tags"), "prod"))),
    ("notes == 1", Match(EQUAL, sel("notes"), "1")),
    ("x in foo and not str == something or list is empty",
     Binary("or", Binary("and", Match(IN, sel("foo"), "x"), Not(Match(EQUAL, sel("str"), "something"))),
            Match(IS_EMPTY, sel("list"), None))),
    ("x in foo and not (str == something or list is empty)",
     Binary("and", Match(IN, sel("foo"), "x"),
            Not(Binary("or", Match(EQUAL, sel("str"), "something"), Match(IS_EMPTY, sel("list"), None))))),
    ("a == 1 or b == 2 or c == 3",
     Binary("or", Match(EQUAL, sel("a"), "1"), Binary("or", Match(EQUAL, sel("b"), "2"), Match(EQUAL, sel("c"), "3")))),
    ("any Job.Datacenters as dc { dc == dc1 }",
     Collection("ANY", sel("Job", "Datacenters"), Binding("Default", default="dc"), Match(EQUAL, sel("dc"), "dc1"))),
    ("all TaskStates as _, s { s.State == running }",
     Collection("ALL", sel("TaskStates"), Binding("Value", value="s"), Match(EQUAL, sel("s", "State"), "running"))),
    ("all TaskStates as name, _ { name != x }",
     Collection("ALL", sel("TaskStates"), Binding("Index", index="name"), Match(NOT_EQUAL, sel("name"), "x"))),
    ("any Job.Meta as k, v { k == owner and v == ops }",
     Collection("ANY", sel("Job", "Meta"), Binding("Index & Value", index="k", value="v"),
                Binary("and", Match(EQUAL, sel("k"), "owner"), Match(EQUAL, sel("v"), "ops")))),
]


@pytest.mark.parametrize("text, expected", PARSE_CASES, ids=[case[0] for case in PARSE_CASES])
def test_parse(text, expected):
    assert bexpr.parse(text) == expected


def test_complex_parenthesized_expression_parses_like_go_bexpr():
    text = ("(((foo == 3) and (not ((bar in baz) and (not (one != two))))) or "
            "(((next is empty) and (not (foo is not empty))) and (bar not in foo)))")
    expected = Binary(
        "or",
        Binary("and", Match(EQUAL, sel("foo"), "3"),
               Not(Binary("and", Match(IN, sel("baz"), "bar"), Not(Match(NOT_EQUAL, sel("one"), "two"))))),
        Binary("and",
               Binary("and", Match(IS_EMPTY, sel("next"), None), Not(Match(IS_NOT_EMPTY, sel("foo"), None))),
               Match(NOT_IN, sel("foo"), "bar")))
    assert bexpr.parse(text) == expected


WS = "[ \\t\\r\\n]"
EXPRESSION_START = f'"(", "-", "0", "\\"", "`", "all", "any", "not", {WS}, [1-9] or [a-zA-Z]'
PARSE_ERRORS = [
    # go-bexpr's own expectations
    ('foo == "12x', '1:12 (11): rule "string": Unterminated string literal'),
    ("foo == `12x", '1:12 (11): rule "string": Unterminated string literal'),
    ("foo == 3x", '1:9 (8): rule "number": Invalid number literal'),
    ("foo[3] == abc", '1:5 (4): rule "index": Invalid index'),
    ('x in foo["abc"', '1:15 (14): rule "index": Unclosed index expression'),
    ('foo["abc" == 3', '1:11 (10): rule "index": Unclosed index expression'),
    ("x in 32", '1:6 (5): rule "match": Invalid selector'),
    ("32 == 32", f'1:4 (3): no match found, expected: "in", "not" or {WS}'),
    ("32 is empty", f'1:4 (3): no match found, expected: "in", "not" or {WS}'),
    ("x in foo abc", f'1:10 (9): no match found, expected: "and", "or", {WS} or EOF'),
    ("(foo == 4", '1:10 (9): rule "grouping": Unmatched parentheses'),
    ('"/hy-phen/under_score/pi|pe/do.t/ti~lde/" == 3', f'1:43 (42): no match found, expected: "in", "not" or {WS}'),
    # v0.1.13 also offers "all"/"any" wherever an expression may start
    ("x in foo and ", f"1:14 (13): no match found, expected: {EXPRESSION_START}"),
    ("x in foo or ", f"1:13 (12): no match found, expected: {EXPRESSION_START}"),
    ("x in foo or not ", '1:17 (16): no match found, expected: "!=", "(", "-", "0", "==", "\\"", "`", "all", "any", '
                         f'"contains", "in", "is", "matches", "not", {WS}, [1-9] or [a-zA-Z]'),
    ("", f"1:1 (0): no match found, expected: {EXPRESSION_START}"),
    # unquoted values with '-' (hashicorp/nomad#23445)
    ("(JobID == my-job)", '1:13 (12): rule "grouping": Unmatched parentheses'),
    ("JobID == my-job", f'1:12 (11): no match found, expected: ".", "[", {WS}, [a-zA-Z0-9_/] or EOF'),
    ("ID == aaaaaaaa-3350", f'1:15 (14): no match found, expected: ".", "[", {WS}, [a-zA-Z0-9_/] or EOF'),
    ("ID == 0f7d2c8e-7d5b", '1:8 (7): rule "number": Invalid number literal'),
    # keyword operators need whitespace; == does not
    ("foo contains\"x\"", f'1:13 (12): no match found, expected: {WS}'),
    # numbers: no hex/octal literals, no leading zeros
    ("CreateIndex == 0x1f", '1:17 (16): rule "number": Invalid number literal'),
    ("CreateIndex == 012", '1:17 (16): rule "number": Invalid number literal'),
    # double-quoted strings end at the first quote: \" cannot be used inside them
    ('Name == "a\\"b"', '1:9 (8): rule "string": invalid syntax'),
    ('Name == "a\\qb"', '1:9 (8): rule "string": invalid syntax'),
    ('Meta["a\\q"] == 1', '1:6 (5): rule "string": invalid syntax'),
    ('Name == "a\\q" or Name == "b\\q"', '1:9 (8): rule "string": invalid syntax\n'
                                         '1:26 (25): rule "string": invalid syntax'),
    ("Name == 'web'", f'1:9 (8): no match found, expected: "-", "0", "\\"", "`", {WS}, [1-9] or [a-zA-Z]'),
    ("ClientStatus = running",
     f'1:14 (13): no match found, expected: "!=", "==", "contains", "in", "is", "matches", "not" or {WS}'),
    # positions: line/column in characters, offset in UTF-8 bytes
    ("x in foo\nabc", f'2:1 (9): no match found, expected: "and", "or", {WS} or EOF'),
    ('Meta["é"] == 3x', '1:15 (15): rule "number": Invalid number literal'),
]


@pytest.mark.parametrize("text, message", PARSE_ERRORS, ids=[case[0] for case in PARSE_ERRORS])
def test_parse_error_text(text, message):
    with pytest.raises(bexpr.FilterParseError) as raised:
        bexpr.compile_filter(text)
    assert str(raised.value) == message


def test_long_chains_parse_and_short_circuit_without_deep_recursion():
    any_of = bexpr.compile_filter(" or ".join(f'ID == "id-{number}"' for number in range(2000)))
    assert any_of.evaluate({"ID": "id-1999"}) is True
    assert any_of.evaluate({"ID": "id-2000"}) is False
    none_of = bexpr.compile_filter(" and ".join(f'ID != "id-{number}"' for number in range(2000)))
    assert none_of.evaluate({"ID": "id-1999"}) is False
    assert none_of.evaluate({"ID": "other"}) is True
    mixed = bexpr.compile_filter("a == 1 or b == 2 and c == 3 or d == 4")
    assert [mixed.evaluate(datum) for datum in (
        {"a": 1}, {"a": 0, "b": 2, "c": 3}, {"a": 0, "b": 2, "c": 0, "d": 0}, {"a": 0, "b": 0, "d": 4},
    )] == [True, True, False, True]


def test_too_deep_nesting_is_a_parse_error_not_a_crash():
    with pytest.raises(bexpr.FilterParseError, match="nested too deeply"):
        bexpr.compile_filter("(" * 400 + "a == 1" + ")" * 400)
    assert bexpr.compile_filter("(" * 30 + "a == 1" + ")" * 30).evaluate({"a": 1}) is True


def test_compile_filter_is_cached():
    assert bexpr.compile_filter('ClientStatus == "running"') is bexpr.compile_filter('ClientStatus == "running"')


# ---------------------------------------------------------------------------------------------------
# Quoting round trips

@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_double_quoted_literal_round_trip(value):
    literal = bexpr.go_string_literal(value)
    assert bexpr.parse(f"Field == {literal}") == Match(EQUAL, sel("Field"), value)
    matcher = bexpr.compile_filter(f"Field == {literal}")
    assert matcher.evaluate({"Field": value}) is True
    assert matcher.evaluate({"Field": value + "x"}) is False
    assert bexpr.compile_filter(f"{literal} in Field").evaluate({"Field": ["other", value]}) is True


@pytest.mark.parametrize("value", ['a"b', '"', "/srv/www", "/", "\\", "\\x22", "", "tab\tnew\nline", "é😀"])
def test_go_string_literal_reads_back(value):
    assert bexpr.parse(f"Field == {bexpr.go_string_literal(value)}").value == value


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="`\r")))
def test_backtick_literal_round_trip(value):
    matcher = bexpr.compile_filter(f"Field == `{value}`")
    assert matcher.evaluate({"Field": value}) is True
    assert matcher.evaluate({"Field": value + "x"}) is False


@pytest.mark.parametrize("literal, value", [
    (r'"\x41\u00e9\U0001F600\101\a\b\f\n\r\t\v\\"', "A\u00e9\U0001F600A\a\b\f\n\r\t\v\\"),
    (r'"\x22quoted\x22"', '"quoted"'),
    ('`raw \\n "text"`', 'raw \\n "text"'),
    ("`with\r\ncarriage`", "with\ncarriage"),
    ('"/srv/www"', "srv/www"),  # read as a JSON-pointer selector, whose text drops the leading slash
    (r'"\x2fsrv/www"', "/srv/www"),
    ('""', ""),
])
def test_value_literals(literal, value):
    assert bexpr.parse(f"Field == {literal}").value == value


@pytest.mark.parametrize("literal", [r'"\ud800"', r'"\400"', r'"\x4"', r'"\'"', '"line\nbreak"', r'"\["'])
def test_invalid_double_quoted_literals(literal):
    with pytest.raises(bexpr.FilterParseError, match='rule "string": invalid syntax'):
        bexpr.parse(f"Field == {literal}")


# ---------------------------------------------------------------------------------------------------
# Evaluation against Nomad allocations

ALLOCATION = {
    "ID": "aaaaaaaa-3350-4b4b-d185-0e1992ed43e9", "Namespace": "default",
    "EvalID": "8e4a0f4c-1d59-2e33-5c09-8b9b8f1f0a11", "Name": "web.frontend[0]",
    "NodeID": "0f7d2c8e-7d5b-4a49-9a38-9d9e5d2a6c01", "NodeName": "node-1",
    "JobID": "web", "TaskGroup": "frontend",
    "Job": {
        "ID": "web", "Name": "web", "Namespace": "default", "Type": "service", "Version": 3, "Priority": 50,
        "Stop": False, "Datacenters": ["dc1", "dc2"], "Meta": {"owner": "ops", "tier": "gold"},
        "TaskGroups": [{
            "Name": "frontend", "Count": 2, "Meta": None,
            "Tasks": [{"Name": "server", "Driver": "raw_exec", "Meta": {"role": "http"}, "Env": None}],
        }],
        "CreateIndex": 10, "ModifyIndex": 14, "JobModifyIndex": 14,
    },
    "DesiredStatus": "run", "DesiredDescription": "", "ClientStatus": "running", "ClientDescription": "Tasks are running",
    "DesiredTransition": {"Migrate": None, "Reschedule": None, "ForceReschedule": None, "NoShutdownDelay": None},
    "TaskStates": {
        "server": {"State": "running", "Failed": False, "Restarts": 2, "LastRestart": "2026-11-26T10:00:00Z",
                   "Events": [{"Type": "Started", "Details": {}}]},
        "sidecar": {"State": "dead", "Failed": True, "Restarts": 0, "LastRestart": None, "Events": []},
    },
    "DeploymentID": "", "DeploymentStatus": None, "NetworkStatus": None, "RescheduleTracker": None,
    "PreemptedAllocations": None, "PreemptedByAllocation": "", "PreviousAllocation": "", "NextAllocation": "",
    "FollowupEvalID": "", "Metrics": {"NodesEvaluated": 1, "NodesAvailable": {"dc1": 1}, "Scores": None},
    "CreateIndex": 1003, "ModifyIndex": 1010, "AllocModifyIndex": 1003,
    "CreateTime": 1764150000000000000, "ModifyTime": 1764150001000000000,
}

EVAL_CASES = [
    ('ClientStatus == "running"', True),
    ("ClientStatus == running", True),
    ('ClientStatus != "running"', False),
    ('ClientStatus == "running" and JobID == "web"', True),
    ('(ClientStatus == "running") and (JobID == "web")', True),
    ('(ClientStatus == "running" and JobID == "api")', False),
    ('ClientStatus == "running" and JobID == "api"', False),
    ('JobID == "api" or TaskGroup == "frontend"', True),
    ('not ClientStatus == "complete"', True),
    ('JobID == "api" and JobID == "api" or Namespace == "default"', True),  # and binds tighter than or
    ('JobID == "api" and (JobID == "api" or Namespace == "default")', False),
    ('ID contains "3350"', True),
    ('ID not contains "ffff"', True),
    ('"3350" in ID', True),
    ('ID matches "^aaaaaaaa-"', True),
    ('ID matches "AAAA"', False),
    ('ID matches "(?i)AAAA"', True),
    ("Name matches `\\[0\\]$`", True),
    ('Name matches "\\\\[0\\\\]$"', True),
    ('Name not matches "^api"', True),
    ("Job.Name == web", True),
    ('Job.Type == "service"', True),
    ("Job.Version == 3", True),
    ("Job.Version != 4", True),
    ("Job.Priority == 50", True),
    ('Job.Priority == "0x32"', True),  # ParseInt base 0
    ('Job.Priority == "0o62"', True),
    ('Job.Priority == "062"', True),  # leading zero: octal
    ('Job.Priority == "5_0"', True),
    ("Job.Stop == false", True),
    ("Job.Stop == F", True),
    ("Job.Stop == 0", True),
    ("Job.Stop != true", True),
    ("dc2 in Job.Datacenters", True),
    ('"dc" in Job.Datacenters', False),
    ("Job.Datacenters contains dc1", True),
    ("Job.Datacenters not contains dc3", True),
    ("Job.Datacenters is not empty", True),
    ('"owner" in Job.Meta', True),
    ('"team" not in Job.Meta', True),
    ("Job.Meta.owner == ops", True),
    ('Job.Meta["owner"] == "ops"', True),
    ('"/Job/Meta/owner" == "ops"', True),
    ('Job.TaskGroups.0.Name == "frontend"', True),
    ('Job.TaskGroups.0.Tasks.0.Meta.role == http', True),
    ('"server" in TaskStates', True),
    ('"web" in TaskStates', False),
    ('TaskStates.server.State == "running"', True),
    ('TaskStates["server"].State == "running"', True),
    ("TaskStates.sidecar.Failed == true", True),
    ("TaskStates.server.Restarts == 2", True),
    ("TaskStates.sidecar.Events is empty", True),
    ("PreemptedAllocations is empty", True),
    ('DeploymentID is empty', True),
    ("Metrics.NodesAvailable.dc1 == 1", True),
    ("CreateIndex == 1003", True),
    ("CreateTime == 1764150000000000000", True),
    ("DesiredTransition.Migrate is empty", True),
]

# A missing map key as the last selector element: the operator's "not present" answer.
NOT_PRESENT_CASES = [
    ('TaskStates.web == "x"', False),
    ('TaskStates.web != "x"', True),
    ('"x" in TaskStates.web', False),
    ('"x" not in TaskStates.web', True),
    ("TaskStates.web is empty", True),
    ("TaskStates.web is not empty", False),
    ('TaskStates.web matches "x"', False),
    ('TaskStates.web not matches "x"', True),
    ('Job.Meta.team == "ops"', False),
    ('Job.TaskGroups.0.Meta.team != "ops"', True),  # a nil map
    ('"/Job/Meta/team" == "x"', False),
]


@pytest.mark.parametrize("text, expected", EVAL_CASES + NOT_PRESENT_CASES,
                         ids=[case[0] for case in EVAL_CASES + NOT_PRESENT_CASES])
def test_evaluate_allocation(text, expected):
    assert bexpr.compile_filter(text).evaluate(ALLOCATION) is expected


def test_hex_literals_need_quotes():
    with pytest.raises(bexpr.FilterParseError, match="Invalid number literal"):
        bexpr.compile_filter("Job.Priority == 0x32")


EVAL_ERRORS = [
    ("InvalidField == 1",
     'error finding value in datum: /InvalidField at part 0: couldn\'t find key: struct field with name "InvalidField"'),
    ('JobType == "service"',
     'error finding value in datum: /JobType at part 0: couldn\'t find key: struct field with name "JobType"'),
    ('jobid == "web"',
     'error finding value in datum: /jobid at part 0: couldn\'t find key: struct field with name "jobid"'),
    ("DeploymentStatus.Healthy == true",
     "error finding value in datum: /DeploymentStatus/Healthy: at part 1, invalid value kind: invalid"),
    ('TaskStates.web.State == "dead"',
     'error finding value in datum: /TaskStates/web/State at part 1: couldn\'t find key "web"'),
    ("TaskStates.server.Nope == 1",
     'error finding value in datum: /TaskStates/server/Nope at part 2: couldn\'t find key: struct field with name "Nope"'),
    ("Job.Name.First == x", "error finding value in datum: /Job/Name/First: at part 2, invalid value kind: string"),
    ("Job.TaskGroups.1.Name == x",
     "error finding value in datum: /Job/TaskGroups/1/Name at part 2: index 1 is out of range (length = 1)"),
    ("Job.TaskGroups.first.Name == x",
     "error finding value in datum: /Job/TaskGroups/first/Name at part 2: cannot parse '' as int: "
     'strconv.ParseInt: parsing "first": invalid syntax'),
    ('"/Job/Meta~1x" == 1',
     'error finding value in datum: /Job/Meta~1x at part 1: couldn\'t find key: struct field with name "Meta/x"'),
    ("CreateIndex == -1", 'error getting match value in expression: strconv.ParseUint: parsing "-1": invalid syntax'),
    ("CreateIndex == 1.5", 'error getting match value in expression: strconv.ParseUint: parsing "1.5": invalid syntax'),
    ("Job.Priority == abc", 'error getting match value in expression: strconv.ParseInt: parsing "abc": invalid syntax'),
    ('Job.Priority == "9223372036854775808"',
     'error getting match value in expression: strconv.ParseInt: parsing "9223372036854775808": value out of range'),
    ("Job.Stop == yes", 'error getting match value in expression: strconv.ParseBool: parsing "yes": invalid syntax'),
    ("Job == web", "unable to find suitable primitive comparison function for matching"),
    ("Job.Meta == ops", "unable to find suitable primitive comparison function for matching"),
    ("Job.Datacenters == dc1", "unable to find suitable primitive comparison function for matching"),
    ("DesiredTransition.Migrate == true", "unable to find suitable primitive comparison function for matching"),
    ('"5" in CreateIndex', 'Cannot perform in/contains operations on type uint64 for selector: "CreateIndex"'),
    ('"x" in CreateIndex', 'error getting match value in expression: strconv.ParseUint: parsing "x": invalid syntax'),
    ('"x" in Job', 'Cannot perform in/contains operations on type struct for selector: "Job"'),
    ('"web" in Job.TaskGroups', 'unable to find suitable primitive comparison function for "in" comparison'),
    ('CreateIndex matches "1"', "Value of type uint64 is not convertible to []byte"),
    ('ID matches "(x"', 'Failed to compile regular expression "(x": error parsing regexp: missing closing ): `(x`'),
    ('ID matches "x)"', 'Failed to compile regular expression "x)": error parsing regexp: unexpected ): `x)`'),
    ('ID matches "a[b"', 'Failed to compile regular expression "a[b": error parsing regexp: missing closing ]: `[b`'),
    ('ID matches "*a"', 'Failed to compile regular expression "*a": error parsing regexp: '
                        "missing argument to repetition operator: `*`"),
    ("ID matches `\\q`", 'Failed to compile regular expression "\\\\q": error parsing regexp: '
                         "invalid escape sequence: `\\q`"),
    ('ID matches "(?=a)"', 'Failed to compile regular expression "(?=a)": error parsing regexp: '
                           "invalid or unsupported Perl syntax: `(?=`"),
    ("Job is empty", "reflect: call of reflect.Value.Len on struct Value"),
]


@pytest.mark.parametrize("text, message", EVAL_ERRORS, ids=[case[0] for case in EVAL_ERRORS])
def test_evaluation_error_text(text, message):
    matcher = bexpr.compile_filter(text)
    with pytest.raises(bexpr.FilterEvaluationError) as raised:
        matcher.evaluate(ALLOCATION)
    assert str(raised.value) == message


def test_and_or_short_circuit_before_errors():
    assert bexpr.compile_filter('ClientStatus == "pending" and InvalidField == 1').evaluate(ALLOCATION) is False
    assert bexpr.compile_filter('ClientStatus == "running" or InvalidField == 1').evaluate(ALLOCATION) is True
    with pytest.raises(bexpr.FilterEvaluationError):
        bexpr.compile_filter('InvalidField == 1 and ClientStatus == "pending"').evaluate(ALLOCATION)


def test_regexp_is_unanchored_and_re2_flavoured():
    assert bexpr.compile_filter('Name matches "frontend"').evaluate(ALLOCATION) is True
    assert bexpr.compile_filter('Field matches "a$"').evaluate({"Field": "a\n"}) is False  # RE2 $ = end of text
    assert bexpr.compile_filter('Field matches "a\\\\z"').evaluate({"Field": "a"}) is True
    assert bexpr.compile_filter('Field matches "^\\\\d+$"').evaluate({"Field": "١٢"}) is False  # ASCII \d


def test_regexp_compile_error_only_when_a_datum_reaches_it():
    matcher = bexpr.compile_filter('ClientStatus == "pending" and ID matches "(x"')
    assert matcher.evaluate(ALLOCATION) is False


# ---------------------------------------------------------------------------------------------------
# any / all (go-bexpr v0.1.13)

COLLECTION_CASES = [
    ("any Job.Datacenters as dc { dc == dc2 }", True),
    ("all Job.Datacenters as dc { dc matches \"^dc\" }", True),
    ("all Job.Datacenters as dc { dc == dc1 }", False),
    ("any Job.Datacenters as i, dc { i == 1 and dc == dc2 }", True),
    ("any Job.Datacenters as i, _ { i == 5 }", False),
    ("any TaskStates as name { name == sidecar }", True),
    ("all TaskStates as _, state { state.State == running }", False),
    ("any TaskStates as _, state { state.Failed == true }", True),
    ("all TaskStates as name, state { name is not empty and state.Restarts != 9 }", True),
    ("any Job.TaskGroups as tg { any tg.Tasks as task { task.Meta.role == http } }", True),
    ("all Job.Meta as key, value { value is not empty }", True),
    ("any PreemptedAllocations as id { id == x }", False),
    ("all PreemptedAllocations as id { id == x }", True),
    ("any Job.Meta.missing as v { v == x }", False),
    ("all Job.Meta.missing as v { v == x }", True),
    ("any TaskStates.server.Events as e { e.Type == Started }", True),
]


@pytest.mark.parametrize("text, expected", COLLECTION_CASES, ids=[case[0] for case in COLLECTION_CASES])
def test_collection_expressions(text, expected):
    assert bexpr.compile_filter(text).evaluate(ALLOCATION) is expected


@pytest.mark.parametrize("text, message", [
    ("any Job as x { x == 1 }", "Job is not a list or a map"),
    ("any TaskStates as k { k.State == x }", "/k references a string so /k/State is invalid"),
    ("any Job.Datacenters as i, _ { i.x == 1 }", "/i references a int so /i/x is invalid"),
    ("any Job.Datacenters as i, i { i == 1 }", '"i" cannot be used as a placeholder for both the index and the value'),
])
def test_collection_errors(text, message):
    with pytest.raises(bexpr.FilterEvaluationError) as raised:
        bexpr.compile_filter(text).evaluate(ALLOCATION)
    assert str(raised.value) == message


# ---------------------------------------------------------------------------------------------------
# The Go type hints

def test_without_map_hint_a_missing_key_is_a_struct_field_error():
    matcher = bexpr.compile_filter('TaskStates.web == "x"', map_paths=())
    with pytest.raises(bexpr.FilterEvaluationError, match='struct field with name "web"'):
        matcher.evaluate(ALLOCATION)


def test_custom_map_paths_with_wildcards():
    datum = {"Groups": [{"Labels": {"a": "1"}}, {"Labels": None}]}
    hint = {"Groups.*.Labels"}
    assert bexpr.compile_filter('Groups.1.Labels.a == "1"', map_paths=hint).evaluate(datum) is False
    assert bexpr.compile_filter('Groups.0.Labels.a == "1"', map_paths=hint).evaluate(datum) is True
    assert bexpr.compile_filter('"a" in Groups.1.Labels', map_paths=hint).evaluate(datum) is False


def test_uint_hint_decides_between_parse_int_and_parse_uint():
    assert bexpr.compile_filter("Count == -1", uint_paths=()).evaluate({"Count": -1}) is True
    with pytest.raises(bexpr.FilterEvaluationError, match="ParseUint"):
        bexpr.compile_filter("Count == -1", uint_paths={"Count"}).evaluate({"Count": 3})


def test_float_fields():
    datum = {"Score": 0.5}
    assert bexpr.compile_filter("Score == 0.5").evaluate(datum) is True
    assert bexpr.compile_filter('Score == "5e-1"').evaluate(datum) is True
    with pytest.raises(bexpr.FilterEvaluationError, match='ParseFloat: parsing "1e400": value out of range'):
        bexpr.compile_filter('Score == "1e400"').evaluate(datum)


def test_evaluation_does_not_modify_the_datum():
    datum = copy.deepcopy(ALLOCATION)
    bexpr.compile_filter("any TaskStates as k, v { v.State == running }").evaluate(datum)
    assert datum == ALLOCATION


# ---------------------------------------------------------------------------------------------------
# strconv equivalents

@pytest.mark.parametrize("raw, value", [
    ("0", 0), ("42", 42), ("-42", -42), ("+7", 7), ("0x1F", 31), ("0X1f", 31), ("0o17", 15), ("017", 15),
    ("0b101", 5), ("1_000", 1000), ("0x_1F", 31), ("-9223372036854775808", -(1 << 63)),
])
def test_parse_go_int(raw, value):
    assert bexpr.parse_go_int(raw) == value


@pytest.mark.parametrize("raw, reason", [
    ("", "invalid syntax"), ("08", "invalid syntax"), ("1__0", "invalid syntax"), ("_1", "invalid syntax"),
    ("1_", "invalid syntax"), (" 1", "invalid syntax"), ("0x", "invalid syntax"), ("1.0", "invalid syntax"),
    ("9223372036854775808", "value out of range"),
])
def test_parse_go_int_errors(raw, reason):
    with pytest.raises(bexpr._CoerceError) as raised:
        bexpr.parse_go_int(raw)
    assert str(raised.value) == f"strconv.ParseInt: parsing {bexpr.go_quote(raw)}: {reason}"


def test_parse_go_uint_and_bool_and_float():
    assert bexpr.parse_go_uint("18446744073709551615") == (1 << 64) - 1
    with pytest.raises(bexpr._CoerceError, match="value out of range"):
        bexpr.parse_go_uint("18446744073709551616")
    with pytest.raises(bexpr._CoerceError, match="invalid syntax"):
        bexpr.parse_go_uint("+1")
    assert [bexpr.parse_go_bool(raw) for raw in ("1", "t", "T", "TRUE", "true", "True")] == [True] * 6
    assert [bexpr.parse_go_bool(raw) for raw in ("0", "f", "F", "FALSE", "false", "False")] == [False] * 6
    with pytest.raises(bexpr._CoerceError, match='ParseBool: parsing "tRuE"'):
        bexpr.parse_go_bool("tRuE")
    assert bexpr.parse_go_float("1_0.5") == 10.5
    assert bexpr.parse_go_float("0x1p-2") == 0.25
    assert bexpr.parse_go_float("-Inf") == float("-inf")
    with pytest.raises(bexpr._CoerceError):
        bexpr.parse_go_float(" 1")


@pytest.mark.parametrize("text, quoted", [
    ("web", '"web"'), ('a"b\\c', '"a\\"b\\\\c"'), ("tab\there\n", '"tab\\there\\n"'), ("\x00\x7f", '"\\x00\\x7f"'),
    ("é", '"é"'), ("\u00a0", '"\\u00a0"'), ("\U000e0001", '"\\U000e0001"'),
])
def test_go_quote(text, quoted):
    assert bexpr.go_quote(text) == quoted
