# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What nomad_deployment does: find a deployment (ID prefix or a job's latest), move it to the state asked for
(promote, fail, pause, resume) when that is a change Nomad can make, and watch it with ``jobs/rollout.py``.

Nomad's words for refusals are kept (reference nomad-deployments-nodes-behaviour.md §1): `can't promote terminal
deployment`, `Task group "g" has n/m healthy allocations`. Refusals are found before anything is sent, so that
check mode predicts them and a refused task writes nothing."""

from __future__ import annotations

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import NotFoundError, OperationFailed
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import job_path, read_job
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import (
    DEPLOYMENT_PAUSED,
    DEPLOYMENT_SUCCESS,
    Progress,
    RolloutFailed,
    deployment_allocations,
    deployment_facts,
    paused_deployment,
    watch_deployment,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.summary import summarize
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import short_id

DEPLOYMENT_ARGUMENT_SPEC = dict(
    id=dict(type="str"),
    job=dict(type="str"),
    state=dict(type="str", choices=["promoted", "failed", "paused", "running"]),
    groups=dict(type="list", elements="str"),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=600),
    diagnose_lines=dict(type="int", default=20),
)
DEPLOYMENT_MUTUALLY_EXCLUSIVE = [["id", "job"]]
DEPLOYMENT_REQUIRED_ONE_OF = [["id", "job"]]
TERMINAL_DEPLOYMENT_STATUSES = frozenset(("successful", "failed", "cancelled", "canceled"))
VERBS = {"promoted": "promote", "failed": "fail", "paused": "pause", "running": "resume"}
MAX_LISTED = 5


class DeploymentRefused(OperationFailed):
    """The deployment cannot go to the state asked for (one line in Nomad's words); nothing was sent."""


# --------------------------------------------------------------------------------------------- finding it
def deployment_label(deployment):
    return (f"deployment {short_id(deployment.get('ID'))} of job {deployment.get('JobID')!r} version "
            f"{deployment.get('JobVersion')}")


def find_by_prefix(client, prefix, namespace):
    """The deployment whose ID is `prefix` or starts with it; none or several are refused, the matches named."""
    matches = list(client.paginate("/v1/deployments", {"namespace": namespace, "prefix": prefix}))
    exact = [found for found in matches if found.get("ID") == prefix]
    if exact:
        matches = exact
    if not matches:
        raise NotFoundError(f'deployment "{prefix}" not found at {client.options.address} (namespace {namespace})')
    if len(matches) > 1:
        listed = ", ".join(f"{found.get('ID')} ({found.get('JobID')} v{found.get('JobVersion')} {found.get('Status')})"
                           for found in matches[:MAX_LISTED])
        more = f" and {len(matches) - MAX_LISTED} more" if len(matches) > MAX_LISTED else ""
        raise DeploymentRefused(f'deployment ID prefix "{prefix}" matches {len(matches)} deployments: {listed}{more}; '
                                "give more of the ID")
    return read_deployment(client, matches[0]["ID"], matches[0].get("Namespace") or namespace)


def read_deployment(client, deployment_id, namespace):
    return client.read(f"/v1/deployment/{deployment_id}", {"namespace": namespace}).data or {}


def latest_of_job(client, job_id, namespace):
    """The job's latest deployment; a missing job or a job without deployments is refused."""
    if read_job(client, job_id, namespace) is None:
        raise NotFoundError(f'job "{job_id}" not found at {client.options.address} (namespace {namespace})')
    deployment = client.read(job_path(job_id) + "/deployment", {"namespace": namespace}).data
    if not deployment:
        raise DeploymentRefused(f'job "{job_id}" has no deployment (only service jobs with an update block get one)')
    return deployment


def find_deployment(client, deployment_id, job_id, namespace):
    if deployment_id is not None:
        return find_by_prefix(client, deployment_id, namespace)
    return latest_of_job(client, job_id, namespace)


# --------------------------------------------------------------------------------------------- transitions
def canary_groups(deployment):
    return {name: state for name, state in (deployment.get("TaskGroups") or {}).items() if state.get("DesiredCanaries")}


def promotion_targets(deployment, groups):
    """{group: state} to promote: every canary group, or those of `groups` (each must have canaries)."""
    canaries = canary_groups(deployment)
    label = deployment_label(deployment)
    if not groups:
        if not canaries:
            raise DeploymentRefused(f"{label} has no canaries to promote (status {deployment.get('Status')})")
        return canaries
    every = deployment.get("TaskGroups") or {}
    unknown = [name for name in groups if name not in every]
    if unknown:
        raise DeploymentRefused(f"{label} has no group {', '.join(repr(name) for name in unknown)} "
                                f"(groups: {', '.join(sorted(every)) or 'none'})")
    without = [name for name in groups if name not in canaries]
    if without:
        raise DeploymentRefused(f"{label}: group {', '.join(repr(name) for name in without)} has no canaries to promote")
    return {name: canaries[name] for name in groups}


def unhealthy_canaries(targets):
    """Nomad's refusal text for groups whose canaries are not all healthy yet, or None."""
    problems = [f'Task group "{name}" has {state.get("HealthyAllocs") or 0}/{state["DesiredCanaries"]} healthy allocations'
                for name, state in sorted(targets.items()) if (state.get("HealthyAllocs") or 0) < state["DesiredCanaries"]]
    return "; ".join(problems) or None


def already_in_state(deployment, state, groups):
    """Whether the deployment already is in `state` (for `promoted`: every targeted group promoted)."""
    status = deployment.get("Status")
    if state == "promoted":
        targets = promotion_targets(deployment, groups)
        return all(target.get("Promoted") for target in targets.values())
    return status == state


def refuse_transition(deployment, state, groups):
    """Raise DeploymentRefused when Nomad would refuse moving the deployment to `state`."""
    status = deployment.get("Status")
    label = deployment_label(deployment)
    if status in TERMINAL_DEPLOYMENT_STATUSES:
        raise DeploymentRefused(f"{label}: can't {VERBS[state]} terminal deployment (status {status}: "
                                f"{deployment.get('StatusDescription')})")
    if state == "promoted":
        problem = unhealthy_canaries(promotion_targets(deployment, groups))
        if problem:
            raise DeploymentRefused(f"{label} (status {status}): canaries not healthy yet: {problem}")


def send_transition(client, deployment, state, groups):
    deployment_id = deployment["ID"]
    params = {"namespace": deployment.get("Namespace") or "default"}
    if state == "promoted":
        body = {"DeploymentID": deployment_id, "All": not groups}
        if groups:
            body["Groups"] = list(groups)
        return client.write("POST", f"/v1/deployment/promote/{deployment_id}", params=params, body=body).data or {}
    if state == "failed":
        return client.write("POST", f"/v1/deployment/fail/{deployment_id}", params=params).data or {}
    body = {"DeploymentID": deployment_id, "Pause": state == "paused"}
    return client.write("POST", f"/v1/deployment/pause/{deployment_id}", params=params, body=body).data or {}


def job_of_deployment(deployment):
    """What ``rollout.watch_deployment`` needs to name the job."""
    return {"ID": deployment.get("JobID"), "Namespace": deployment.get("Namespace") or "default",
            "Version": deployment.get("JobVersion")}


def control_deployment(client, params, namespace, check_mode=False, report=None):
    """The result keys of nomad_deployment: changed, deployment, eval_id, reverted_job_version, summary."""
    deployment = find_deployment(client, params["id"], params["job"], namespace)
    state, groups = params["state"], params["groups"] or []
    if groups and state != "promoted":
        raise DeploymentRefused("groups only applies to state=promoted")
    result = dict(changed=False, eval_id=None, reverted_job_version=None, summary=[])
    if state is not None and not already_in_state(deployment, state, groups):
        refuse_transition(deployment, state, groups)
        result["changed"] = True
        if not check_mode:
            answer = send_transition(client, deployment, state, groups)
            result["eval_id"] = answer.get("EvalID") or None
            result["reverted_job_version"] = answer.get("RevertedJobVersion")
            deployment = read_deployment(client, deployment["ID"], deployment.get("Namespace") or namespace)
    result["deployment"] = deployment_facts(deployment)
    if params["wait"] and not check_mode and state not in ("failed", "paused"):
        result.update(wait_for_deployment(client, deployment, params, report))
    return result


def wait_for_deployment(client, deployment, params, report):
    """Until terminal (or canaries waiting for promotion): the facts and summary, or RolloutFailed with the report.
    A paused deployment is refused at once: it ends only by someone's decision, so waiting would only time out."""
    job = job_of_deployment(deployment)
    if deployment.get("Status") == DEPLOYMENT_PAUSED:
        raise paused_deployment(deployment)
    if deployment.get("Status") == DEPLOYMENT_SUCCESS:
        facts = deployment_facts(deployment)
    else:
        facts = watch_deployment(client, deployment["ID"], job, params["wait_timeout"], params["diagnose_lines"],
                                 Progress(report))
    return dict(deployment=facts, summary=summarize(deployment_allocations(client, deployment["ID"], job)))


__all__ = ("DEPLOYMENT_ARGUMENT_SPEC", "DEPLOYMENT_MUTUALLY_EXCLUSIVE", "DEPLOYMENT_REQUIRED_ONE_OF", "RolloutFailed",
           "control_deployment")
