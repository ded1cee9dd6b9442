// The start-up contract with Vault (go-plugin's handshake):
// - refuse to run unless VAULT_BACKEND_PLUGIN holds Vault's magic cookie,
// - speak backend protocol 5 and require the host to offer it,
// - AutoMTLS: the host's certificate is in PLUGIN_CLIENT_CERT,
// - announce ourselves with exactly one stdout line:
//   1|5|unix|<socket path>|grpc|<certificate DER, base64 std, no padding>

export const MAGIC_COOKIE_KEY = 'VAULT_BACKEND_PLUGIN';
export const MAGIC_COOKIE_VALUE = '6669da05-b1c8-4f49-97d9-c8e5bed98e20';
/** go-plugin's core protocol version. */
export const CORE_PROTOCOL_VERSION = 1;
/** Vault's backend plugin protocol version spoken here. */
export const APP_PROTOCOL_VERSION = 5;

export type Env = Record<string, string | undefined>;

export interface HandshakeConfig {
  /** PEM of the host's certificate (client side of AutoMTLS). */
  clientCertPem: string;
  /** Where to create the unix socket. */
  socketDir?: string;
}

/** A start-up refusal: main prints the message as one stderr line and exits 1. */
export class HandshakeError extends Error {
  readonly code: 'ERR_NOT_A_PLUGIN_HOST' | 'ERR_PROTOCOL_VERSION' | 'ERR_NO_AUTOMTLS';
  constructor(code: HandshakeError['code'], message: string) {
    super(message);
    this.name = 'HandshakeError';
    this.code = code;
  }
}

export function checkEnvironment(env: Env): HandshakeConfig {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    throw new HandshakeError(
      'ERR_NOT_A_PLUGIN_HOST',
      `this is a Vault plugin and is started by Vault, not by hand (${MAGIC_COOKIE_KEY} does not hold Vault's magic cookie); register it with \`tvm plugin register\``,
    );
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (!offered.includes(String(APP_PROTOCOL_VERSION))) {
    throw new HandshakeError(
      'ERR_PROTOCOL_VERSION',
      `the host offers plugin protocol versions [${offered.join(',')}] but tvm speaks only version ${APP_PROTOCOL_VERSION} (Vault 1.12 or later)`,
    );
  }
  const clientCertPem = env.PLUGIN_CLIENT_CERT ?? '';
  if (!clientCertPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new HandshakeError(
      'ERR_NO_AUTOMTLS',
      'the host did not send its AutoMTLS certificate (PLUGIN_CLIENT_CERT); tvm needs AutoMTLS, which Vault uses for protocol 5 plugins',
    );
  }
  const socketDir = env.PLUGIN_UNIX_SOCKET_DIR?.trim();
  return { clientCertPem, ...(socketDir ? { socketDir } : {}) };
}

export function handshakeLine(socketPath: string, certBase64: string): string {
  return `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|unix|${socketPath}|grpc|${certBase64}\n`;
}
