# A persistent tvm server (Vault-style config):
#   export TVM_SEAL_KEY="$(openssl rand -hex 32)"     # keep it safe: without it the data cannot be read
#   npx tvm server -config vault-config/dev.hcl
# The first start initialises the storage and prints the root token once; later
# starts keep the mounts, roles, policies, tokens and leases. Relative paths are
# resolved against this file's directory.

storage "sqlite" {
  path = "../data/tvm.db"
}

# Every stored value is encrypted (AES-256-GCM) under this 32-byte key: 32 raw
# bytes in a file, or 64 hex digits or base64 in a file or an environment
# variable. Keep the key away from the database and its backups.
seal "static" {
  current_key_id = "dev-1"
  current_key    = "env://TVM_SEAL_KEY"
  # In production, a file only the server's user can read:
  #   openssl rand -out /etc/tvm/seal-2025-06.key 32 && chmod 600 /etc/tvm/seal-2025-06.key
  # current_key = "file:///etc/tvm/seal-2025-06.key"
  # To rotate: the new key as current_key_id/current_key, the old one as
  # previous_key_id/previous_key. The next start re-seals every value under the
  # new key; after that start, these two lines can go.
  # previous_key_id = "dev-1"
  # previous_key    = "env://TVM_SEAL_KEY_OLD"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
  # For TLS instead:
  # tls_cert_file = "/etc/tvm/tls/server.crt"
  # tls_key_file  = "/etc/tvm/tls/server.key"
}

# The externally reachable address; the issuer of tokens is <api_addr>/v1/tvm.
api_addr = "http://127.0.0.1:8200"
