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

# Clouds: `tvm creds <role> --cloud <name>` (POST /v1/tokens with cloud) gives a
# cloud credential for the role's iam.<name> target beside the token, refreshed
# while the lease is renewed and torn down when it is revoked. Only the clouds
# with a block here are served; the others answer 400 naming `cloud`.
# Each needs the broker's own credentials in that cloud (see README).

# cloud "aws" {
#   region                 = "us-east-1"
#   access_key_id          = "AKIA..."                # default: the SDK's chain (env, profile, instance role)
#   secret_access_key_file = "/etc/tvm/aws-secret"
#   deny_skew              = "2m"                     # a revoked session's deny outlives its expiry by this
# }

# cloud "gcp" {
#   credentials_file   = "/etc/tvm/gcp-broker.json"   # for service_account targets; default: ADC
#   max_token_lifetime = "1h"
# }

# cloud "azure" {
#   # The ARM credential that revokes user delegation keys is DefaultAzureCredential's (AZURE_* env).
#   max_retries = 3
# }

# cloud "kubernetes" {
#   cluster {
#     server     = "https://k8s.internal:6443"      # must equal the targets' api_server
#     token_file = "/etc/tvm/k8s-broker-token"
#     ca_file    = "/etc/tvm/k8s-ca.pem"
#   }
#   # kubeconfig = "/etc/tvm/kubeconfig"             # or every context of a kubeconfig
# }
