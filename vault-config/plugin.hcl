# An example Vault server configuration for running tvm as a plugin.
#
#   npm run build:plugin
#   sudo install -m 0755 dist/plugin/tvm-plugin /etc/vault/plugins/tvm-plugin
#   vault server -config=vault-config/plugin.hcl
#   vault operator init && vault operator unseal ...      (once)
#   tvm plugin register --api-addr https://vault.example.com:8200    (prints the two lines)
#   vault plugin register -sha256=<sha256> -command=tvm-plugin -args=--api-addr=https://vault.example.com:8200 secret tvm
#   vault secrets enable -path=tvm tvm
#
# The plugin is a Node.js script (#!/usr/bin/env node): Node 20.16 or later
# must be on the PATH of the user Vault runs as.

# Where Vault looks for plugin executables; registered commands are relative to it.
plugin_directory = "/etc/vault/plugins"

# The address clients use; give the same to the plugin as its --api-addr argument
# (`tvm plugin register --api-addr ...`): it names the tokens' issuer,
# <api_addr>/v1/<mount>. Vault does not pass api_addr to plugins itself.
api_addr     = "https://vault.example.com:8200"
cluster_addr = "https://vault.example.com:8201"

storage "raft" {
  path    = "/var/lib/vault/data"
  node_id = "vault-1"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/vault/tls/vault.crt"
  tls_key_file  = "/etc/vault/tls/vault.key"
}

# HashiCorp recommends mlock off with integrated storage (raft). The tvm plugin
# does not lock its own memory either way (it ignores VAULT_PLUGIN_MLOCK_ENABLED).
disable_mlock = true

ui = true
