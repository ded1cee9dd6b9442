// `tvm plugin register`: what an operator runs to put the bundled plugin into a
// real Vault. Prints the two vault CLI lines, or with apply performs the same
// through Vault's API: sys/plugins/catalog/secret/<name> then sys/mounts/<path>
// (or, when the mount already runs tvm, sys/plugins/reload/backend so it picks
// up the new file).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build:plugin` writes the plugin. */
export const DEFAULT_PLUGIN_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/plugin/tvm-plugin');
export const PLUGIN_NAME = 'tvm';

export interface RegistrationOptions {
  /** The bundled plugin file (already copied into Vault's plugin_directory, or to be). */
  pluginPath?: string;
  /** Mount path; default `tvm`. */
  mount?: string;
  /** Passed to the plugin as its argument --api-addr (the issuer's base); omitted when not given. */
  apiAddr?: string;
  /** Reads the file; injectable for tests. */
  readFile?: (path: string) => Buffer;
}

export interface RegistrationPlan {
  name: string;
  mount: string;
  sha256: string;
  /** The file name, as Vault wants it: relative to plugin_directory. */
  command: string;
  /** The plugin's arguments (`--api-addr=<url>`): Vault and OpenBao both take -args; OpenBao has no -env. */
  args: string[];
  /** The two vault CLI lines. */
  lines: [string, string];
}

/** A problem with the plugin file or the options; the CLI maps it to a usage error. */
export class PluginRegisterError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PluginRegisterError';
  }
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function planRegistration(options: RegistrationOptions = {}): RegistrationPlan {
  const pluginPath = resolve(options.pluginPath ?? DEFAULT_PLUGIN_PATH);
  const mount = (options.mount ?? PLUGIN_NAME).replace(/^\/+|\/+$/g, '');
  if (mount === '') throw new PluginRegisterError('the mount path may not be empty');
  let bytes: Buffer;
  try {
    bytes = (options.readFile ?? readFileSync)(pluginPath);
  } catch (err) {
    throw new PluginRegisterError(`cannot read the plugin file ${pluginPath} (build it with \`npm run build:plugin\`)`, { cause: err });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const command = basename(pluginPath);
  const args = options.apiAddr ? [`--api-addr=${options.apiAddr.replace(/\/+$/, '')}`] : [];
  // -args is one comma-separated value (a URL has no commas).
  const argsFlag = args.length > 0 ? ` -args=${shellQuote(args.join(','))}` : '';
  return {
    name: PLUGIN_NAME,
    mount,
    sha256,
    command,
    args,
    lines: [
      `vault plugin register -sha256=${sha256} -command=${shellQuote(command)}${argsFlag} secret ${PLUGIN_NAME}`,
      `vault secrets enable -path=${shellQuote(mount)} ${PLUGIN_NAME}`,
    ],
  };
}

/** The part of a Vault connection apply needs (src/client's VaultConnection fits). */
export interface VaultWriter {
  read(path: string): Promise<{ data: Record<string, unknown> | null } | null>;
  write(path: string, body?: Record<string, unknown>): Promise<unknown>;
}

export interface ApplyResult {
  registered: true;
  /** `enabled` a new mount, or `reloaded` an existing tvm mount. */
  mount: 'enabled' | 'reloaded';
}

export async function applyRegistration(vault: VaultWriter, plan: RegistrationPlan): Promise<ApplyResult> {
  await vault.write(`sys/plugins/catalog/secret/${plan.name}`, {
    sha256: plan.sha256,
    command: plan.command,
    ...(plan.args.length ? { args: plan.args } : {}),
  });
  const mounts = await vault.read('sys/mounts');
  const table = (mounts?.data ?? mounts ?? {}) as Record<string, unknown>;
  const existing = table[`${plan.mount}/`] as { type?: string } | undefined;
  if (existing) {
    if (existing.type !== plan.name) {
      throw new PluginRegisterError(`${plan.mount}/ is already a mount of type ${existing.type ?? 'unknown'}, not ${plan.name}`);
    }
    await vault.write('sys/plugins/reload/backend', { plugin: plan.name });
    return { registered: true, mount: 'reloaded' };
  }
  await vault.write(`sys/mounts/${plan.mount}`, { type: plan.name });
  return { registered: true, mount: 'enabled' };
}
