# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jobs: the job spec from HCL2 (parsed by the Nomad server), JSON or a dict; HCL2 variables; the plan that
decides whether anything changes; registration with check-and-set and PreserveCounts; stop and purge.

The rollout after a registration is watched by ``jobs/rollout.py``; the plan is rendered by ``jobs/plan_render.py``.
Nomad's server parses less strictly than its CLI (no file functions, unknown variables ignored): the CLI's
refusals are restored here (reference nomad-jobs-behaviour.md §1.2, §1.3, §9).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import math
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NomadError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.options import NomadOptionError
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line

# pygohcl is an optional controller requirement (see variables_needing_pygohcl()), imported only where it is
# used: loading it starts Go's runtime with its threads, and a process forked from one that has it (Ansible's
# main process forks a worker per task) hangs for good on its first call into pygohcl.
HAS_PYGOHCL = importlib.util.find_spec("pygohcl") is not None

JOB_ARGUMENT_SPEC = dict(
    state=dict(type="str", default="present", choices=["present", "absent"]),
    spec=dict(type="raw"),
    src=dict(type="str"),
    format=dict(type="str", default="auto", choices=["auto", "hcl2", "json"]),
    variables=dict(type="dict"),
    variable_files=dict(type="list", elements="str"),
    name=dict(type="str"),
    check_index=dict(type="int"),
    preserve_counts=dict(type="bool", default=False),
    purge=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    diagnose_lines=dict(type="int", default=20),
)
JOB_MUTUALLY_EXCLUSIVE = [["spec", "src"]]
JOB_REQUIRED_IF = [("state", "absent", ["name"]), ("state", "present", ["spec", "src"], True)]

FILE_FUNCTIONS = ("abspath", "basename", "dirname", "file", "filebase64", "fileexists", "fileset", "pathexpand")
_FILE_FUNCTION_CALL = re.compile(r"\b(" + "|".join(FILE_FUNCTIONS) + r")\s*\(")
PARSE_ERROR_PREFIX = "Failed to parse job: "
DIFF_UNCHANGED = "None"
JOB_FACT_KEYS = ("ID", "Namespace", "Type", "Version", "JobModifyIndex", "Status", "Stop")


class JobSpecError(NomadOptionError):
    """The job given cannot be sent as it is (one line saying what to fix); nothing was registered."""


@dataclass
class JobRequest:
    """What the task asks for, read from its options and (on the controller) from its files."""

    source: object  # HCL2/JSON text or a dict
    format: str = "auto"
    variables: dict = field(default_factory=dict)  # merged: variable_files in order, then `variables`
    name: str | None = None
    check_index: int | None = None
    preserve_counts: bool = False
    source_name: str = "spec"  # how messages name the source (a file name or "spec")


# --------------------------------------------------------------------------------------------- input
def source_format(source, requested="auto"):
    """`hcl2` or `json`: a dict and text starting with `{` are JSON, unless it is HCL's JSON syntax (`job` key)."""
    if requested != "auto":
        return requested
    if isinstance(source, dict):
        return "hcl2" if "job" in source else "json"
    text = str(source).lstrip()
    if text.startswith("{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            return "json"
        return "hcl2" if isinstance(decoded, dict) and "job" in decoded else "json"
    return "hcl2"


def hcl_string(text):
    """An HCL quoted string: JSON escapes, and `${` / `%{` doubled so that they stay literal."""
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def hcl_value(value):
    """A Python value (from YAML/JSON) as an HCL expression."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise JobSpecError(f"{value!r} cannot be an HCL value")
        return json.dumps(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{hcl_string(str(key))} = {hcl_value(item)}" for key, item in value.items()) + "}"
    raise JobSpecError(f"a value of type {type(value).__name__} cannot be an HCL variable value")


def variable_assignments(variables):
    """The `Variables` text of a parse request: one `name = value` line per variable, sorted by name."""
    lines = []
    for name in sorted(variables):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(name)):
            raise JobSpecError(f"{name!r} is not a valid HCL variable name")
        lines.append(f"{name} = {hcl_value(variables[name])}")
    return "".join(line + "\n" for line in lines)


PYGOHCL_MISSING = ("variables and variable_files need the Python library pygohcl on the controller (pip install pygohcl), "
                   "so that a variable the job file does not declare is refused like `nomad job run` does")


def variables_needing_pygohcl(request):
    """The refusal when HCL2 variables are given and pygohcl is missing (an undeclared one could not be
    refused, as Nomad's CLI does), else None. Without variables nothing needs checking."""
    if HAS_PYGOHCL or not request.variables:
        return None
    return PYGOHCL_MISSING


def values_of_variable_file(text, name):
    """The variable values of an HCL variable file (`name = value` lines), read with pygohcl."""
    if not HAS_PYGOHCL:
        raise JobSpecError(PYGOHCL_MISSING)
    pygohcl = importlib.import_module("pygohcl")
    try:
        values = pygohcl.loads(text)
    except (pygohcl.HCLParseError, pygohcl.HCLInternalError, pygohcl.ValidationError) as error:
        raise JobSpecError(f"variable file {name}: {one_line(error)}") from None
    if not isinstance(values, dict):
        raise JobSpecError(f"variable file {name}: expected `name = value` lines")
    return values


def declared_variables(text, source_name):
    """Names the HCL2 job file declares (`variable "x" {}` blocks and `variables {}` attributes)."""
    pygohcl = importlib.import_module("pygohcl")
    try:
        body = pygohcl.loads(text)
    except (pygohcl.HCLParseError, pygohcl.HCLInternalError, pygohcl.ValidationError) as error:
        raise JobSpecError(f"cannot read the variables {source_name} declares: {one_line(error)}") from None
    declared = set((body.get("variable") or {}) if isinstance(body, dict) else ())
    for block in _as_list(body.get("variables") if isinstance(body, dict) else None):
        declared.update(block if isinstance(block, dict) else ())
    return declared


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def refuse_undeclared_variables(request, text):
    declared = declared_variables(text, request.source_name)
    undeclared = sorted(set(request.variables) - declared)
    if undeclared:
        names = ", ".join(f'"{name}"{closest_declared(name, declared)}' for name in undeclared)
        raise JobSpecError(f"{request.source_name} declares no variable {names}: remove it from variables/variable_files "
                           f"or declare it with a variable block (Nomad's CLI refuses it too)")


def closest_declared(name, declared):
    close = difflib.get_close_matches(name, sorted(declared), n=1)
    return f" (did you mean \"{close[0]}\"?)" if close else ""


def refuse_undeclared_before_a_parse_error(request, text):
    """An unset variable in a refused parse is often a mistyped one: name the undeclared variable first, when
    the file itself can be read (otherwise the server's diagnostic says what is wrong with it)."""
    if not request.variables:
        return
    try:
        declared_variables(text, request.source_name)
    except JobSpecError:
        return
    refuse_undeclared_variables(request, text)


def parse_failure(error, request):
    """One line for a refused parse: Nomad's diagnostic (with position), or how to inline a file function."""
    text = error.nomad_message or str(error)
    if text.startswith(PARSE_ERROR_PREFIX):
        text = text[len(PARSE_ERROR_PREFIX):]
    if "filesystem function disabled" in text or _FILE_FUNCTION_CALL.search(text):
        return JobSpecError(
            f"{request.source_name}: file functions ({', '.join(FILE_FUNCTIONS)}) are disabled when the Nomad server "
            "parses a job; pass the content as a variable instead, e.g. variables: {app_conf: \"{{ "
            "lookup('ansible.builtin.file', 'app.conf') }}\"} and data = var.app_conf in the job file")
    return JobSpecError(f"{request.source_name}: {one_line(text)}")


def parse_hcl(client, request, namespace):
    """(job, variables text): the server's parse of an HCL2 source with the variables as HCL assignments."""
    text = request.source if isinstance(request.source, str) else json.dumps(request.source)
    refusal = variables_needing_pygohcl(request)
    if refusal:
        raise JobSpecError(refusal)
    variables = variable_assignments(request.variables)
    try:
        response = client.write("POST", "/v1/jobs/parse", params={"namespace": namespace},
                                body={"JobHCL": text, "Variables": variables, "Canonicalize": False})
    except NomadError as error:
        if error.status == 400:
            refuse_undeclared_before_a_parse_error(request, text)
            raise parse_failure(error, request) from None
        raise
    if request.variables:
        refuse_undeclared_variables(request, text)
    return response.data, variables


def job_from_json(source, request):
    """The Job of a JSON text or dict: a Job, or {"Job": Job} as `nomad job inspect` prints it."""
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except ValueError as error:
            raise JobSpecError(f"{request.source_name} is not valid JSON: {error}") from None
    if isinstance(source, dict) and isinstance(source.get("Job"), dict):
        source = source["Job"]
    if not isinstance(source, dict) or not isinstance(source.get("ID"), str) or not source.get("ID"):
        raise JobSpecError(f"{request.source_name} is not a Nomad job: expected a JSON object with ID and TaskGroups, "
                           "or {\"Job\": {...}} as `nomad job inspect` prints it")
    if request.variables:
        raise JobSpecError("variables and variable_files only apply to HCL2 jobs, not to JSON (like `nomad job run -json`)")
    return dict(source)


def job_of_request(client, request, namespace):
    """(job, submission): the API job and the Submission to store with it."""
    if source_format(request.source, request.format) == "hcl2":
        job, variables = parse_hcl(client, request, namespace)
        source = request.source if isinstance(request.source, str) else json.dumps(request.source)
        submission = dict(Source=source, Format="hcl2", Variables=variables)
    else:
        job = job_from_json(request.source, request)
        source = request.source if isinstance(request.source, str) else json.dumps(request.source, indent=2, sort_keys=True)
        submission = dict(Source=source, Format="json")
    if request.name is not None and request.name != job["ID"]:
        raise JobSpecError(f"name {request.name!r} differs from the job ID {job['ID']!r} in {request.source_name}; "
                           "use the same ID or leave name out")
    return job, submission


def job_namespace(job, option_namespace, default_namespace="default"):
    """The job's namespace: the spec's, else the connection option's; both set and different is refused."""
    own = job.get("Namespace")
    if own and option_namespace not in (None, "", default_namespace, own):
        raise JobSpecError(f"the job's namespace {own!r} differs from the namespace option {option_namespace!r}; "
                           "set one of them, or the same value in both")
    return own or option_namespace or default_namespace


# --------------------------------------------------------------------------------------------- server calls
def job_path(job_id):
    return "/v1/job/" + quote(job_id, safe="")


def read_job(client, job_id, namespace):
    """The stored job, or None when Nomad has no job with that ID in the namespace."""
    try:
        return client.read(job_path(job_id), {"namespace": namespace}).data
    except NomadError as error:
        if error.status == 404:
            return None
        raise


def with_preserved_counts(job, current):
    """A copy of `job` whose groups that exist in `current` keep their current count (what PreserveCounts
    makes the server do; the plan endpoint ignores PreserveCounts, hashicorp/nomad#19845)."""
    counts = {group.get("Name"): group.get("Count") for group in (current or {}).get("TaskGroups") or []}
    copy = dict(job)
    copy["TaskGroups"] = [dict(group, Count=counts[group.get("Name")]) if group.get("Name") in counts else group
                          for group in job.get("TaskGroups") or []]
    return copy


def namespace_problem(error, namespace, address):
    """`namespace "x" not found at <address>` for Nomad's validation text about a nonexistent namespace."""
    if f'nonexistent namespace "{namespace}"' in str(getattr(error, "nomad_message", "") or ""):
        return JobSpecError(f'namespace "{namespace}" not found at {address}')
    return None


def plan_job(client, job, namespace):
    """Nomad's plan with the diff (nothing is written)."""
    try:
        return client.write("POST", job_path(job["ID"]) + "/plan", params={"namespace": namespace},
                            body={"Job": job, "Diff": True}).data or {}
    except NomadError as error:
        raise namespace_problem(error, namespace, client.options.address) or error from None


def plan_changes(plan):
    return ((plan.get("Diff") or {}).get("Type") or DIFF_UNCHANGED) != DIFF_UNCHANGED


def refuse_index_conflict(check_index, plan, job_id):
    """Nomad's check-and-set refusal, before anything is sent (the registration enforces it again)."""
    current = plan.get("JobModifyIndex") or 0
    if check_index is None or check_index == current:
        return
    if check_index == 0:
        reason = "job already exists"
    elif current == 0:
        reason = "job does not exist"
    else:
        reason = f"job exists with conflicting job modify index: {current}"
    raise JobSpecError(f"job {job_id!r} not registered: Enforcing job modify index {check_index}: {reason}")


def register_job(client, job, submission, namespace, check_index=None, preserve_counts=False):
    body = {"Job": job, "Submission": submission, "PreserveCounts": bool(preserve_counts)}
    if check_index is not None:
        body.update(EnforceIndex=True, JobModifyIndex=check_index)
    return client.write("POST", job_path(job["ID"]), params={"namespace": namespace}, body=body).data or {}


def stop_job(client, job_id, namespace, purge=False):
    params = {"namespace": namespace}
    if purge:
        params["purge"] = "true"
    return client.write("DELETE", job_path(job_id), params=params).data or {}


def job_facts(job):
    """The `job` key of the result."""
    return {key: (job or {}).get(key) for key in JOB_FACT_KEYS}


def nomad_warnings(*answers):
    """Nomad's `Warnings` texts of plan/register answers, one entry per warning."""
    warnings = []
    for answer in answers:
        text = (answer or {}).get("Warnings") or ""
        warnings.extend(line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("* "))
    return warnings
