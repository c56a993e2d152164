# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HCL2 job files -> Nomad's `api.Job` JSON, like `jobspec2` does for `POST /v1/jobs/parse`, and the SDK canonicalisation.

Parsing uses two maintained HCL2 libraries, never a hand-written parser:
* `pygohcl` (HashiCorp's Go HCL library) checks the syntax first, so that syntax errors carry HCL's own texts;
* `python-hcl2` gives the structure: it keeps the order of labelled blocks and tells quoted string literals
  (`"\\"x\\""`) from expressions (`"${var.x}"`).

Only a subset of the job specification is mapped (see README "Jobs"); anything else is a 400, never a silent drop.
References: /work/shared/reference/nomad-jobs-behaviour.md §1.1-1.4.
"""
from __future__ import annotations

import copy
import json
import re

import hcl2
import pygohcl
from lark.exceptions import LarkError

from .nomadtime import parse_go_duration

FILE_NAME = "input.hcl"
UNSET_DETAIL = ("A used variable must be set or have a default value; see "
                "https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details.")
BLOCK_MARK = "__is_block__"
_NO_COMMENTS = hcl2.SerializationOptions(with_comments=False)


class JobspecError(ValueError):
    """The job file cannot be turned into a job; str() is the text after `Failed to parse job: `."""


class UnsupportedError(JobspecError):
    """Valid Nomad, but outside what the emulator maps (README "Jobs")."""


# --- Nomad's names for the HCL attributes of each supported block ---------------------------------------------
def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# attribute -> (Go field, kind); kinds: str, int, bool, duration, strlist, map
JOB_ATTRS = {"name": ("Name", "str"), "type": ("Type", "str"), "region": ("Region", "str"),
             "namespace": ("Namespace", "str"), "priority": ("Priority", "int"), "all_at_once": ("AllAtOnce", "bool"),
             "datacenters": ("Datacenters", "strlist"), "node_pool": ("NodePool", "str"), "id": ("ID", "str")}
GROUP_ATTRS = {"count": ("Count", "int"), "shutdown_delay": ("ShutdownDelay", "duration")}
TASK_ATTRS = {"driver": ("Driver", "str"), "user": ("User", "str"), "kill_timeout": ("KillTimeout", "duration"),
              "leader": ("Leader", "bool"), "kill_signal": ("KillSignal", "str")}
UPDATE_ATTRS = {"stagger": ("Stagger", "duration"), "max_parallel": ("MaxParallel", "int"),
                "health_check": ("HealthCheck", "str"), "min_healthy_time": ("MinHealthyTime", "duration"),
                "healthy_deadline": ("HealthyDeadline", "duration"),
                "progress_deadline": ("ProgressDeadline", "duration"), "auto_revert": ("AutoRevert", "bool"),
                "auto_promote": ("AutoPromote", "bool"), "canary": ("Canary", "int")}
MIGRATE_ATTRS = {"max_parallel": ("MaxParallel", "int"), "health_check": ("HealthCheck", "str"),
                 "min_healthy_time": ("MinHealthyTime", "duration"),
                 "healthy_deadline": ("HealthyDeadline", "duration")}
RESTART_ATTRS = {"attempts": ("Attempts", "int"), "interval": ("Interval", "duration"),
                 "delay": ("Delay", "duration"), "mode": ("Mode", "str"),
                 "render_templates": ("RenderTemplates", "bool")}
RESCHEDULE_ATTRS = {"attempts": ("Attempts", "int"), "interval": ("Interval", "duration"),
                    "delay": ("Delay", "duration"), "delay_function": ("DelayFunction", "str"),
                    "max_delay": ("MaxDelay", "duration"), "unlimited": ("Unlimited", "bool")}
RESOURCES_ATTRS = {"cpu": ("CPU", "int"), "cores": ("Cores", "int"), "memory": ("MemoryMB", "int"),
                   "memory_max": ("MemoryMaxMB", "int")}
CONSTRAINT_ATTRS = {"attribute": ("LTarget", "str"), "operator": ("Operand", "str"), "value": ("RTarget", "str")}
SERVICE_ATTRS = {"name": ("Name", "str"), "port": ("PortLabel", "str"), "tags": ("Tags", "strlist"),
                 "provider": ("Provider", "str")}
CHECK_ATTRS = {"name": ("Name", "str"), "type": ("Type", "str"), "path": ("Path", "str"),
               "interval": ("Interval", "duration"), "timeout": ("Timeout", "duration"),
               "command": ("Command", "str"), "args": ("Args", "strlist"), "port": ("PortLabel", "str"),
               "method": ("Method", "str"), "protocol": ("Protocol", "str"), "task": ("TaskName", "str")}
VARIABLE_ATTRS = ("type", "default", "description", "sensitive")


# --- entry point -------------------------------------------------------------------------------------------------
def parse_job(job_hcl: str, variables: str = "") -> dict:
    """The `api.Job` (not canonicalised) for an HCL2 job file and var-file text; raises JobspecError."""
    if job_hcl.lstrip(" ")[:1] == "{":
        raise UnsupportedError(f"{FILE_NAME}: the emulator does not parse HCL-JSON job files; send JSON jobs to "
                               "/v1/jobs directly")
    check_syntax(job_hcl)
    if variables.strip():
        check_syntax(variables, var_file=True)
    body = _load(job_hcl)
    refuse_filesystem_functions(job_hcl, body)
    context = Evaluation(declare_variables(body.get("variable") or ()))
    context.assign(variable_values(variables))
    context.resolve()
    unknown = sorted(set(body) - {"variable", "job"})
    if unknown:
        raise UnsupportedError(f"{FILE_NAME}: the emulator does not support the top-level {unknown[0]!r} block")
    jobs = body.get("job") or []
    if not jobs:
        raise JobspecError(f"{FILE_NAME}:1,1-1: Missing job block; A job block is required")
    if len(jobs) > 1:
        raise JobspecError(f"{FILE_NAME}: Duplicate job block; Only one job block is allowed")
    label, job_body = _labelled(jobs[0])
    return job_from_block(label, job_body, context)


def check_syntax(text: str, var_file: bool = False) -> None:
    """HCL's own syntax diagnostics (file name `input.hcl`, like the parse endpoint)."""
    try:
        pygohcl.loads(text)
    except pygohcl.HCLParseError as err:
        message = str(err).removeprefix("invalid HCL: ")
        message = re.sub(r"^[^:\s]+\.hcl:", f"{FILE_NAME}:", message)
        raise JobspecError(f"unable to parse var content: {message}" if var_file else message) from err
    except pygohcl.HCLInternalError as err:
        raise JobspecError(str(err)) from err


def _load(text: str) -> dict:
    try:
        return hcl2.loads(text, serialization_options=_NO_COMMENTS)
    except LarkError as err:  # pygohcl vetted the syntax already; this is a python-hcl2 limitation
        raise JobspecError(f"{FILE_NAME}: {err}") from err


# --- file-system functions are disabled server-side (§1.2, §1.3) --------------------------------------------------
FS_FUNCTIONS = ("abspath", "basename", "dirname", "file", "filebase64", "fileexists", "fileset", "pathexpand")
_FS_CALL = re.compile(rf"(?<![\w.])({'|'.join(FS_FUNCTIONS)})\s*\(")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def _expression_texts(node):
    """The expression parts of python-hcl2's rendering: whole non-literal values and `${...}` in literals."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != BLOCK_MARK:
                yield from _expression_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expression_texts(item)
    elif isinstance(node, str):
        yield from (_INTERPOLATION.findall(node) if is_string_literal(node) else [node])


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _in_expression(line: str, column: int) -> bool:
    """Outside a quoted string, or inside a `${...}` of one, and not in a comment."""
    before = line[:column]
    unquoted = _QUOTED.sub('""', before)
    if "#" in unquoted or "//" in unquoted:
        return False
    if unquoted.count('"') % 2 == 0:
        return True
    opened = before.rfind("${")
    return opened != -1 and "}" not in before[opened:]


def refuse_filesystem_functions(text: str, body: dict) -> None:
    """jobspec2 replaces the file-system functions by stubs whose type check fails, so each call is HCL's
    `Error in function call` diagnostic on `name(`; decode errors are joined with newlines."""
    if not any(_FS_CALL.search(expression) for expression in _expression_texts(body)):
        return
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _FS_CALL.finditer(line):
            if _in_expression(line, match.start()):
                errors.append(f"{FILE_NAME}:{number},{match.start() + 1}-{match.end() + 1}: Error in function call; "
                              f'Call to function "{match.group(1)}" failed: filesystem function disabled.')
    raise JobspecError("\n".join(errors))


def _labelled(entry: dict):
    """`{"\\"label\\"": {...}}` -> ("label", body)."""
    (key, body), = entry.items()
    return unquote(key), body


# --- values and expressions --------------------------------------------------------------------------------------
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def is_string_literal(raw) -> bool:
    return isinstance(raw, str) and len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"'


def unquote(raw: str) -> str:
    if not is_string_literal(raw):
        return raw
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw[1:-1])


_VAR_REF = re.compile(r"^\$\{\s*var\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}$")
_TEMPLATE_PART = re.compile(r"(\$\$\{)|\$\{([^}]*)\}")
_KEPT_REFERENCE = re.compile(r"^(attr|node|meta|NOMAD_[A-Za-z0-9_]*|env|[A-Z][A-Z0-9_]*)(\.[A-Za-z0-9_.\-]+)?$")


class Evaluation:
    """Variables and the expressions the emulator evaluates: literals, `var.x`, and `${...}` in strings."""

    def __init__(self, declared: dict):
        self.declared = declared          # name -> {"type": str|None, "default": value|None}
        self.assigned: dict = {}          # name -> (raw value, (line, col_start, col_end))
        self.values: dict = {}

    def assign(self, values: dict) -> None:
        self.assigned.update(values)

    def resolve(self) -> None:
        errors = []
        for name, declaration in self.declared.items():
            if name in self.assigned:
                raw, where = self.assigned[name]
                try:
                    self.values[name] = convert_variable(raw, declaration["type"])
                except TypeError as err:
                    line, start, end = where
                    errors.append(f"{FILE_NAME}:{line},{start}-{end}: Invalid value for variable; The value for "
                                  f"{name} is not compatible with the variable's type constraint: {err}.")
            elif declaration["has_default"]:
                self.values[name] = declaration["default"]
            else:
                errors.append(f'<nil>: Unset variable "{name}"; {UNSET_DETAIL}')
        if errors:
            raise JobspecError("\n".join(errors))

    def value(self, raw):
        """The Python value of an attribute as python-hcl2 renders it."""
        if isinstance(raw, list):
            return [self.value(item) for item in raw]
        if isinstance(raw, dict):
            return {unquote(key): self.value(item) for key, item in raw.items() if key != BLOCK_MARK}
        if not isinstance(raw, str):
            return raw
        if is_string_literal(raw):
            heredoc = heredoc_text(raw[1:-1])  # python-hcl2 quotes a heredoc's raw text; no escapes there
            return self.template(heredoc if heredoc is not None else unquote(raw))
        reference = _VAR_REF.match(raw)
        if reference:
            return self.variable(reference.group(1))
        raise UnsupportedError(f"{FILE_NAME}: the emulator does not evaluate the expression {raw}")

    def variable(self, name: str):
        if name not in self.values:
            raise JobspecError(f"{FILE_NAME}: Unsupported attribute; This object does not have an attribute named "
                               f'"{name}".')
        return self.values[name]

    def template(self, text: str) -> str:
        def substitute(match):
            if match.group(1):
                return "${"
            inner = match.group(2).strip()
            if inner.startswith("var."):
                value = self.variable(inner[4:])
                return go_string(value)
            if _KEPT_REFERENCE.match(inner):
                return match.group(0)  # jobspec2 keeps unresolvable references literally
            raise UnsupportedError(f"{FILE_NAME}: the emulator does not evaluate the expression ${{{inner}}}")
        return _TEMPLATE_PART.sub(substitute, text)


_HEREDOC = re.compile(r"^<<(-?)([A-Za-z_][A-Za-z0-9_-]*)\n(.*?)\n?[ \t]*\2$", re.S)


def heredoc_text(raw: str):
    """The string of a heredoc from python-hcl2's raw text (`<<EOT\n...\nEOT`): each line keeps its newline;
    `<<-` removes the lines' common leading whitespace (HCL's flush heredoc); None if raw is not a heredoc."""
    match = _HEREDOC.match(raw)
    if match is None:
        return None
    lines = match.group(3).split("\n") if match.group(3) else []
    if match.group(1):
        indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
        common = min(indents, default=0)
        lines = [line[common:] for line in lines]
    return "".join(line + "\n" for line in lines)


def go_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def declare_variables(blocks) -> dict:
    declared = {}
    for entry in blocks:
        name, body = _labelled(entry)
        extra = sorted(set(body) - set(VARIABLE_ATTRS) - {BLOCK_MARK})
        if extra:
            raise UnsupportedError(f"{FILE_NAME}: the emulator does not support {extra[0]!r} in variable {name!r}")
        var_type = body.get("type")
        if var_type not in (None, "string", "number", "bool"):
            raise UnsupportedError(f"{FILE_NAME}: the emulator supports only string, number and bool variables "
                                   f"(variable {name!r} is {var_type})")
        default = Evaluation({}).value(body["default"]) if "default" in body else None
        declared[name] = {"type": var_type, "has_default": "default" in body, "default": default}
        if "default" in body and var_type:
            try:
                declared[name]["default"] = convert_variable(default, var_type)
            except TypeError as err:
                raise JobspecError(f"{FILE_NAME}: Invalid default value for variable; This default value is not "
                                   f"compatible with the variable's type constraint: {err}.") from err
    return declared


def variable_values(text: str) -> dict:
    """Assignments of a var file -> {name: (value, (line, first column, column after the value))}."""
    if not text.strip():
        return {}
    parsed = _load(text)
    if "variable" in parsed:
        raise JobspecError(f"{FILE_NAME}: Variable declaration in a .var file; A .var file may contain only "
                           "variable assignments")
    values = {}
    for name, raw in parsed.items():
        values[name] = (Evaluation({}).value(raw), _value_range(text, name))
    return values


def _value_range(text: str, name: str):
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(rf"\s*{re.escape(name)}\s*=\s*(.*?)\s*(#.*|//.*)?$", line)
        if match:
            return number, match.start(1) + 1, match.end(1) + 1
    return 1, 1, 1


def convert_variable(value, var_type):
    """cty's conversion of an assigned value to a primitive type constraint (TypeError: cty's message)."""
    if var_type in (None, "any"):
        return value
    if var_type == "string":
        if isinstance(value, (list, dict)):
            raise TypeError("string required")
        return go_string(value)
    if var_type == "number":
        if isinstance(value, bool):
            raise TypeError("a number is required")
        if isinstance(value, (int, float)):
            return value
        try:
            number = float(str(value))
        except ValueError as err:
            raise TypeError("a number is required") from err
        return int(number) if number.is_integer() else number
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise TypeError("a bool is required")


# --- blocks -> api.Job ------------------------------------------------------------------------------------------
def _check_known(body: dict, where: str, attrs, blocks=()) -> None:
    for key in body:
        if key == BLOCK_MARK or key in attrs or key in blocks:
            continue
        raise UnsupportedError(f"{FILE_NAME}: the emulator does not support {key!r} in {where} "
                               f"(supported: {', '.join(sorted(set(attrs) | set(blocks)))})")


def _typed(value, kind: str, where: str):
    if kind == "duration":
        if isinstance(value, bool):
            raise JobspecError(f"{FILE_NAME}: {where}: a duration is required")
        if isinstance(value, (int, float)):
            return int(value)
        try:
            return int(parse_go_duration(str(value)) * 1_000_000_000)
        except ValueError as err:
            raise JobspecError(f'{FILE_NAME}: {where}: time: invalid duration "{value}"') from err
    if kind == "int":
        try:
            return int(convert_variable(value, "number"))
        except TypeError as err:
            raise JobspecError(f"{FILE_NAME}: {where}: a number is required") from err
    if kind == "bool":
        try:
            return convert_variable(value, "bool")
        except TypeError as err:
            raise JobspecError(f"{FILE_NAME}: {where}: a bool is required") from err
    if kind == "strlist":
        return [go_string(item) for item in (value or [])]
    return go_string(value)


def _attributes(body: dict, attrs: dict, context: Evaluation, where: str) -> dict:
    out = {}
    for key, (field, kind) in attrs.items():
        if key in body:
            out[field] = _typed(context.value(body[key]), kind, f"{where}.{key}")
    return out


def _single_block(body: dict, name: str, where: str):
    blocks = body.get(name)
    if not blocks:
        return None
    if len(blocks) > 1:
        raise JobspecError(f'{FILE_NAME}: Duplicate {name} block; Only one block of type "{name}" is allowed '
                           f"in {where}")
    return blocks[0]


def _simple_block(body: dict, name: str, attrs: dict, context: Evaluation, where: str):
    block = _single_block(body, name, where)
    if block is None:
        return None
    _check_known(block, f"{where}.{name}", attrs)
    return _attributes(block, attrs, context, f"{where}.{name}")


def _map_block(body: dict, name: str, context: Evaluation, where: str):
    block = _single_block(body, name, where)
    if block is None:
        return None
    return {key: go_string(value) for key, value in context.value(block).items()}


def _constraints(body: dict, context: Evaluation, where: str):
    constraints = []
    for block in body.get("constraint") or ():
        _check_known(block, f"{where}.constraint", CONSTRAINT_ATTRS)
        fields = _attributes(block, CONSTRAINT_ATTRS, context, f"{where}.constraint")
        constraints.append({"LTarget": fields.get("LTarget", ""), "RTarget": fields.get("RTarget", ""),
                            "Operand": fields.get("Operand", "=")})
    return constraints or None


def _services(body: dict, context: Evaluation, where: str):
    services = []
    for block in body.get("service") or ():
        _check_known(block, f"{where}.service", SERVICE_ATTRS, ("check",))
        service = _attributes(block, SERVICE_ATTRS, context, f"{where}.service")
        checks = []
        for check in block.get("check") or ():
            _check_known(check, f"{where}.service.check", CHECK_ATTRS)
            checks.append(_attributes(check, CHECK_ATTRS, context, f"{where}.service.check"))
        service["Checks"] = checks or None
        services.append(service)
    return services or None


def job_from_block(label: str, body: dict, context: Evaluation) -> dict:
    where = f"job {label!r}"
    _check_known(body, where, JOB_ATTRS, ("group", "meta", "constraint", "update", "migrate", "reschedule"))
    job = {"ID": label, "Name": label}
    job.update(_attributes(body, JOB_ATTRS, context, where))
    job["Meta"] = _map_block(body, "meta", context, where)
    job["Constraints"] = _constraints(body, context, where)
    job["Update"] = _simple_block(body, "update", UPDATE_ATTRS, context, where)
    job["Migrate"] = _simple_block(body, "migrate", MIGRATE_ATTRS, context, where)
    job["Reschedule"] = _simple_block(body, "reschedule", RESCHEDULE_ATTRS, context, where)
    job["TaskGroups"] = [group_from_block(entry, context) for entry in body.get("group") or ()]
    return job


def group_from_block(entry: dict, context: Evaluation) -> dict:
    name, body = _labelled(entry)
    where = f"group {name!r}"
    _check_known(body, where, GROUP_ATTRS, ("task", "meta", "constraint", "update", "migrate", "restart",
                                            "reschedule", "service"))
    group = {"Name": name}
    group.update(_attributes(body, GROUP_ATTRS, context, where))
    group["Meta"] = _map_block(body, "meta", context, where)
    group["Constraints"] = _constraints(body, context, where)
    group["Update"] = _simple_block(body, "update", UPDATE_ATTRS, context, where)
    group["Migrate"] = _simple_block(body, "migrate", MIGRATE_ATTRS, context, where)
    group["RestartPolicy"] = _simple_block(body, "restart", RESTART_ATTRS, context, where)
    group["ReschedulePolicy"] = _simple_block(body, "reschedule", RESCHEDULE_ATTRS, context, where)
    group["Services"] = _services(body, context, where)
    group["Tasks"] = [task_from_block(task, context, where) for task in body.get("task") or ()]
    return group


def task_from_block(entry: dict, context: Evaluation, group_where: str) -> dict:
    name, body = _labelled(entry)
    where = f"{group_where} task {name!r}"
    _check_known(body, where, TASK_ATTRS, ("config", "env", "meta", "resources", "restart", "service",
                                           "constraint"))
    task = {"Name": name}
    task.update(_attributes(body, TASK_ATTRS, context, where))
    config = _single_block(body, "config", where)
    task["Config"] = context.value(config) if config is not None else None
    task["Env"] = _map_block(body, "env", context, where)
    task["Meta"] = _map_block(body, "meta", context, where)
    task["Resources"] = _simple_block(body, "resources", RESOURCES_ATTRS, context, where)
    task["RestartPolicy"] = _simple_block(body, "restart", RESTART_ATTRS, context, where)
    task["Services"] = _services(body, context, where)
    task["Constraints"] = _constraints(body, context, where)
    return task


# --- the SDK's Canonicalize (reference §1.4) -------------------------------------------------------------------------
DEFAULT_UPDATE = {"Stagger": 30_000_000_000, "MaxParallel": 1, "HealthCheck": "checks",
                  "MinHealthyTime": 10_000_000_000, "HealthyDeadline": 300_000_000_000,
                  "ProgressDeadline": 600_000_000_000, "AutoRevert": False, "Canary": 0, "AutoPromote": False}
DEFAULT_MIGRATE = {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10_000_000_000,
                   "HealthyDeadline": 300_000_000_000}
RESCHEDULE_DEFAULTS = {
    "service": {"Attempts": 0, "Interval": 0, "Delay": 30_000_000_000, "DelayFunction": "exponential",
                "MaxDelay": 3_600_000_000_000, "Unlimited": True},
    "batch": {"Attempts": 1, "Interval": 86_400_000_000_000, "Delay": 5_000_000_000, "DelayFunction": "constant",
              "MaxDelay": 0, "Unlimited": False},
}
ZERO_RESCHEDULE = {"Attempts": 0, "Interval": 0, "Delay": 0, "DelayFunction": "", "MaxDelay": 0, "Unlimited": False}
RESTART_SERVICE = {"Attempts": 2, "Interval": 1_800_000_000_000, "Delay": 15_000_000_000, "Mode": "fail",
                   "RenderTemplates": False}
RESTART_OTHER = {"Attempts": 3, "Interval": 86_400_000_000_000, "Delay": 15_000_000_000, "Mode": "fail",
                 "RenderTemplates": False}
JOB_DEFAULTS = {"ID": "", "ParentID": "", "Namespace": "default", "Priority": 50, "Stop": False, "Region": "global",
                "NodePool": "", "Type": "service", "AllAtOnce": False, "ConsulNamespace": "", "VaultNamespace": "",
                "NomadTokenID": "", "Status": "", "StatusDescription": "", "Stable": False, "Version": 0,
                "CreateIndex": 0, "ModifyIndex": 0, "JobModifyIndex": 0}


def _merged(defaults: dict, *overrides) -> dict:
    out = dict(defaults)
    for override in overrides:
        out.update({key: value for key, value in (override or {}).items() if value is not None})
    return out


def canonicalize(job: dict) -> dict:
    """`api.Job.Canonicalize` for the supported fields: a new dict, the input is not changed."""
    job = copy.deepcopy(job)
    for key, value in JOB_DEFAULTS.items():
        if job.get(key) is None:
            job[key] = value
    if not job.get("Name"):
        job["Name"] = job["ID"]
    job_type = job["Type"]
    job_update = job.get("Update")
    if job_update is not None:
        job["Update"] = _merged(DEFAULT_UPDATE, job_update)
    elif job_type == "service":
        job["Update"] = dict(DEFAULT_UPDATE)
    for group in job.get("TaskGroups") or ():
        canonicalize_group(job, group, job_update)
    return job


def canonicalize_group(job: dict, group: dict, job_update) -> None:
    job_type = job["Type"]
    if group.get("Count") is None:
        group["Count"] = 1
    group.setdefault("EphemeralDisk", None)
    group["EphemeralDisk"] = _merged({"Sticky": False, "Migrate": False, "SizeMB": 300}, group["EphemeralDisk"])
    if job_update or group.get("Update"):
        group["Update"] = _merged(DEFAULT_UPDATE, job_update, group.get("Update"))
    else:
        group["Update"] = dict(DEFAULT_UPDATE) if job_type == "service" else None
    if job_type != "system":
        group["ReschedulePolicy"] = _merged(RESCHEDULE_DEFAULTS.get(job_type, ZERO_RESCHEDULE), job.get("Reschedule"),
                                            group.get("ReschedulePolicy"))
    else:
        group.setdefault("ReschedulePolicy", None)
    if job_type == "service" or job.get("Migrate") or group.get("Migrate"):
        group["Migrate"] = _merged(DEFAULT_MIGRATE, job.get("Migrate"), group.get("Migrate"))
    else:
        group["Migrate"] = None
    restart_defaults = RESTART_SERVICE if job_type in ("service", "system") else RESTART_OTHER
    group["RestartPolicy"] = _merged(restart_defaults, group.get("RestartPolicy"))
    for key in ("Meta", "Constraints", "Services", "ShutdownDelay"):
        group.setdefault(key, None)
    for task in group.get("Tasks") or ():
        canonicalize_task(group, task)


def canonicalize_task(group: dict, task: dict) -> None:
    resources = dict(task.get("Resources") or {})
    if resources.get("CPU") is None and resources.get("Cores") is None:
        resources["CPU"] = 100
    resources.setdefault("CPU", 0)
    resources.setdefault("Cores", 0)
    if resources.get("MemoryMB") is None:
        resources["MemoryMB"] = 300
    resources.setdefault("MemoryMaxMB", 0)
    task["Resources"] = resources
    if task.get("KillTimeout") is None:
        task["KillTimeout"] = 5_000_000_000
    task["LogConfig"] = {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}
    task["RestartPolicy"] = _merged(group["RestartPolicy"], task.get("RestartPolicy"))
    for key in ("Driver", "User", "KillSignal"):
        if task.get(key) is None:
            task[key] = ""
    task["Leader"] = bool(task.get("Leader", False))
    for key in ("Config", "Env", "Meta", "Services", "Constraints"):
        task.setdefault(key, None)


# Every field of the SDK's api.Job / TaskGroup / Task: unset pointers are JSON null (reference §1.4).
API_JOB_FIELDS = {key: None for key in (
    "Affinities", "AllAtOnce", "Constraints", "ConsulNamespace", "CreateIndex", "Datacenters",
    "DispatchIdempotencyToken", "ID", "JobModifyIndex", "Meta", "Migrate", "ModifyIndex", "Multiregion", "Name",
    "Namespace", "NodePool", "NomadTokenID", "ParameterizedJob", "ParentID", "Payload", "Periodic", "Priority",
    "Region", "Reschedule", "Spreads", "Stable", "Status", "StatusDescription", "Stop", "SubmitTime", "TaskGroups",
    "Type", "UI", "Update", "VaultNamespace", "Version", "VersionTag")}
API_JOB_FIELDS["Dispatched"] = False
API_GROUP_FIELDS = {key: None for key in (
    "Affinities", "Constraints", "Consul", "Count", "Disconnect", "EphemeralDisk", "MaxClientDisconnect", "Meta",
    "Migrate", "Name", "Networks", "PreventRescheduleOnLost", "ReschedulePolicy", "RestartPolicy", "Scaling",
    "Services", "ShutdownDelay", "Spreads", "StopAfterClientDisconnect", "Tasks", "Update", "Volumes")}
API_TASK_FIELDS = {key: None for key in (
    "Actions", "Affinities", "Artifacts", "CSIPluginConfig", "Config", "Constraints", "Consul", "DispatchPayload",
    "Env", "Identities", "Identity", "KillTimeout", "Lifecycle", "LogConfig", "Meta", "Resources",
    "RestartPolicy", "Schedule", "ScalingPolicies", "Services", "Templates", "Vault", "VolumeMounts")}
API_TASK_FIELDS.update({"Driver": "", "User": "", "Leader": False, "ShutdownDelay": 0, "KillSignal": "", "Kind": ""})


def with_all_fields(job: dict) -> dict:
    """The job with every SDK field present (a new dict)."""
    job = {**API_JOB_FIELDS, **job}
    groups = []
    for group in job.get("TaskGroups") or ():
        group = {**API_GROUP_FIELDS, **group}
        group["Tasks"] = [{**API_TASK_FIELDS, **task} for task in group.get("Tasks") or ()]
        groups.append(group)
    job["TaskGroups"] = groups or job.get("TaskGroups")
    return job


def _canonical_keys(obj: dict, names) -> dict:
    lowered = {name.lower(): name for name in names}
    return {lowered.get(key.lower(), key): value for key, value in obj.items()}


def normalise_keys(job: dict) -> dict:
    """Go's encoding/json matches keys case-insensitively: `"id"` fills `ID` (a new dict, three levels)."""
    job = _canonical_keys(job, API_JOB_FIELDS)
    groups = []
    for group in job.get("TaskGroups") or ():
        group = _canonical_keys(group, API_GROUP_FIELDS)
        group["Tasks"] = [_canonical_keys(task, API_TASK_FIELDS) for task in group.get("Tasks") or ()]
        groups.append(group)
    if groups:
        job["TaskGroups"] = groups
    return job


def dumps(job: dict) -> str:
    """Reflection-encoded SDK types come out with sorted keys (reference §0.4)."""
    return json.dumps(job, sort_keys=True, separators=(",", ":"))
