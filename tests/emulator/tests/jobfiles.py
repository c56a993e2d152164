# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Job files and helpers shared by the job tests."""
from __future__ import annotations

from conftest import blocking_until

WEB_HCL = '''variable "image" {
  type    = string
  default = "nginx:1.25"
}

variable "count" {
  type    = number
  default = 2
}

job "JOBID" {
  datacenters = ["dc1"]

  group "web" {
    count = var.count

    restart {
      attempts = 1
      delay    = "10s"
    }

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "echo ${var.image} $${HOME} ${NOMAD_ALLOC_ID}"]
      }

      env {
        FOO = "bar"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
'''

# The same job, reformatted (spacing, comments, attribute order): it must plan as no change.
WEB_HCL_REFORMATTED = '''# reformatted
variable "count" {
  default = 2
  type = number
}
variable "image" {
  default = "nginx:1.25"
  type = string
}
job "JOBID" {
  datacenters = [ "dc1" ]
  group "web" {
    count = var.count
    restart {
      delay = "10s"   // same value
      attempts = 1
    }
    task "server" {
      driver = "raw_exec"
      config {
        args = [ "-c", "echo ${var.image} $${HOME} ${NOMAD_ALLOC_ID}" ]
        command = "/bin/sh"
      }
      env { FOO = "bar" }
      resources {
        memory = 128
        cpu = 100
      }
    }
  }
}
'''


def web_hcl(job_id: str, reformatted: bool = False) -> str:
    return (WEB_HCL_REFORMATTED if reformatted else WEB_HCL).replace("JOBID", job_id)


def parse(api, hcl: str, variables: str = "", **kwargs) -> dict:
    response = api.post("/v1/jobs/parse", json={"JobHCL": hcl, "Variables": variables, "Canonicalize": True},
                        **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def register(api, job: dict, **body) -> dict:
    response = api.post("/v1/jobs", json={"Job": job, **body})
    assert response.status_code == 200, response.text
    return response.json()


def allocations_until(api, job_id: str, predicate, timeout: float = 60.0) -> list:
    """Blocking queries on /v1/job/:id/allocations until predicate(allocations) holds; those allocations."""
    return blocking_until(api, f"/v1/job/{job_id}/allocations", predicate, f"the allocations of {job_id}", timeout)[-1]


def deployment_until(api, job_id: str, predicate, timeout: float = 60.0) -> dict:
    """Blocking queries on /v1/job/:id/deployment (the job's latest) until predicate(deployment) holds."""
    return blocking_until(api, f"/v1/job/{job_id}/deployment",
                          lambda deployment: deployment is not None and predicate(deployment),
                          f"the deployment of {job_id}", timeout)[-1]
