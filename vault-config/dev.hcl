# A persistent tvm server (Vault-style config):
#   npx tvm server -config vault-config/dev.hcl
# The first start initialises the storage and prints the root token once; later
# starts keep the mounts, roles, policies, tokens and leases. Relative paths are
# resolved against this file's directory.

storage "sqlite" {
  path = "../data/tvm.db"
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
