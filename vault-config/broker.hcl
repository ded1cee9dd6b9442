# The tvm broker (tvm broker run --config vault-config/broker.hcl).
# Relative paths resolve against this file's folder.

vault {
  address = "http://127.0.0.1:8200"
  mount   = "tvm"
  timeout = "30s"
  # How the broker logs in; its own token is renewed (and re-logged in) by the broker.
  auth "token" {
    # token_file = "/etc/tvm/broker.token"   # default: the VAULT_TOKEN environment variable
  }
  # auth "approle" {
  #   path           = "approle"
  #   role_id        = "..."
  #   secret_id_file = "/etc/tvm/broker.secret-id"
  # }
  # auth "jwt" {
  #   path     = "jwt"
  #   role     = "tvm-broker"
  #   jwt_file = "/var/run/secrets/tokens/vault"
  # }
}

# Embedded default: one SQLite file. For several replicas, PostgreSQL:
# store "postgres" { url = "postgresql://tvm@db.internal/tvm" }
store "sqlite" {
  path = "../data/broker.db"
}

# The local API for workloads: loopback only (it has no authentication) and/or a unix socket.
listener {
  address = "127.0.0.1:8300"
  # socket = "/run/tvm/broker.sock"
}

# Roles whose Vault leases reconcile checks (roles in the registry are added).
roles = ["demo"]

# On SIGTERM, revoke the leases of this broker's workloads.
revoke_on_shutdown = true

renewal {
  jitter        = 0.1     # ± fraction of the 2/3-of-remaining-ttl delay
  backoff_min   = "10s"
  backoff_max   = "5m"
  replace_grace = "30s"   # old lease revoked this long after a re-fetch near max_ttl
  max_age       = 0       # 0: no maximum lease age
}

workloads {
  heartbeat_tolerance = 0.5   # dead after interval × 1.5 without a heartbeat
}

anomaly {
  window    = "1m"
  baseline  = "1h"
  multiple  = 10
  min_count = 50
}

revocation {
  max_attempts = 10   # then the lease is marked irrevocable and shown
}

loop {
  tick               = "250ms"
  reconcile_interval = "5m"
  claim_ttl          = "90s"
  batch              = 500
  concurrency        = 32
}

log {
  level = "info"
}
