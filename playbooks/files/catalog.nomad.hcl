# The demo's job (`make demo`, playbooks/demo.yml): a small service deployed from this HCL2 file, with
# variables, by nomadops.nomad.nomad_job. Its task checks its configuration, then serves until stopped.

variable "version" {
  type        = string
  description = "The application version; it is in the task's environment, so a new one rolls the allocations."
}

variable "database_url" {
  type        = string
  default     = "postgres://catalog@db.service.consul:5432/catalog"
  description = "Where the catalog keeps its data; the task refuses to start without it."
}

variable "replicas" {
  type    = number
  default = 2
}

job "catalog" {
  datacenters = ["dc1"]
  type        = "service"

  group "api" {
    count = var.replicas

    # One allocation at a time, healthy for 200ms before the next; a failed version rolls back.
    update {
      max_parallel      = 1
      min_healthy_time  = "200ms"
      healthy_deadline  = "30s"
      progress_deadline = "1m"
      auto_revert       = true
    }

    # A crashing version fails its deployment at once instead of being restarted and rescheduled first.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    # Draining a node moves one allocation at a time, the next once the replacement is healthy.
    migrate {
      max_parallel     = 1
      min_healthy_time = "200ms"
    }

    task "api" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args = ["-c", <<-SCRIPT
          if [ -z "$DATABASE_URL" ]; then
            echo "catalog $APP_VERSION: DATABASE_URL is empty, refusing to start" >&2
            exit 78
          fi
          echo "catalog $APP_VERSION serving on :8080 (database $DATABASE_URL)"
          trap 'echo "catalog $APP_VERSION: shutting down"; exit 0' TERM
          while :; do sleep 1; done
        SCRIPT
        ]
      }

      env {
        APP_VERSION  = var.version
        DATABASE_URL = var.database_url
      }

      resources {
        cpu    = 100
        memory = 64
      }

      kill_timeout = "2s"
    }
  }
}
