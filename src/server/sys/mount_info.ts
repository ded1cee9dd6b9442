// What the mount paths of sys share: how the built-in mounts (sys/ and
// auth/token/, which no mount table holds) are shown, the mount input of
// sys/mounts/<path> and sys/auth/<path>, and the tune answers.

import type { Fields } from '../../sdk/fields.ts';
import type { LogicalResponse } from '../../sdk/logical.ts';
import type { ServerCore } from '../context.ts';
import { badRequest } from '../errors.ts';
import { boolField, checked, stringField, stringMapField } from '../fields.ts';

export function systemMountInfo(core: ServerCore): Record<string, unknown> {
  return builtinMountInfo(core.mounts.builtinIds.system, {
    type: 'system',
    description: 'system endpoints used for control, policy and debugging',
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, passthrough_request_headers: ['Accept'] },
    seal_wrap: true,
  });
}

export function tokenMountInfo(core: ServerCore): Record<string, unknown> {
  return builtinMountInfo(core.mounts.builtinIds.token, {
    type: 'token',
    description: 'token based credentials',
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, token_type: 'default-service' },
    seal_wrap: false,
  });
}

function builtinMountInfo(
  ids: { accessor: string; uuid: string },
  info: { type: string; description: string; config: Record<string, unknown>; seal_wrap: boolean },
): Record<string, unknown> {
  return {
    accessor: ids.accessor,
    config: info.config,
    description: info.description,
    external_entropy_access: false,
    local: false,
    options: null,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: info.seal_wrap,
    type: info.type,
    uuid: ids.uuid,
  };
}

/** The body of POST sys/mounts/<path> and sys/auth/<path>: Vault's mount input, checked. */
export function mountInput(d: Record<string, unknown>, rawPath: string) {
  let type = stringField(d, 'type', true)!;
  const pluginName = stringField(d, 'plugin_name');
  if (type === 'plugin' && pluginName) type = pluginName;
  const config = d.config;
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw badRequest('invalid config: expected an object');
  }
  return {
    path: rawPath,
    type,
    description: stringField(d, 'description') ?? '',
    config: (config ?? {}) as Record<string, unknown>,
    // Vault stores options absent from the call as {} and an explicit null as null.
    options: d.options === undefined ? {} : d.options === null ? null : (stringMapField(d, 'options') ?? {}),
    local: boolField(d, 'local', false),
    seal_wrap: boolField(d, 'seal_wrap', false),
    external_entropy_access: boolField(d, 'external_entropy_access', false),
  };
}

/** The fields of mount input, as both sys/mounts/<path> and sys/auth/<path> declare them. */
export const MOUNT_INPUT_FIELDS: Fields = {
  type: checked('string', 'The backend type (tvm, approle, jwt).'),
  plugin_name: checked('string', 'The plugin\'s name, when type is "plugin".'),
  description: checked('string', 'A human-friendly description.'),
  config: checked('object', 'Mount configuration: default_lease_ttl, max_lease_ttl, ...'),
  options: checked('string_map', 'Options passed to the backend.'),
  local: checked('bool', 'Accepted for compatibility: this server does not replicate.'),
  seal_wrap: checked('bool', 'Accepted for compatibility.'),
  external_entropy_access: checked('bool', 'Accepted for compatibility.'),
};

/** The fields of a tune write (sys/mounts/<path>/tune, sys/auth/<path>/tune). */
export const TUNE_FIELDS: Fields = {
  description: checked('string', 'A new description.'),
  default_lease_ttl: checked('duration', 'The mount\'s default lease ttl.'),
  max_lease_ttl: checked('duration', 'The mount\'s max lease ttl.'),
};

/** A tune read: Vault repeats the fields at the top level (its legacy shape). */
export function tuneData(data: Record<string, unknown>): LogicalResponse {
  return { data, http: { topLevel: true } };
}

/** A tune read shows a mount's options only when it has some. */
export function optionsField(options: Record<string, string> | null): { options?: Record<string, string> } {
  return options && Object.keys(options).length > 0 ? { options } : {};
}

/** A mount path as given (`/approle`, `approle/`) in its one form, with a trailing slash. */
export function mountPathOf(raw: string): string {
  return `${raw.replace(/^\/+/, '').replace(/\/+$/, '')}/`;
}
