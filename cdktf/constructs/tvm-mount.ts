// TvmMount: the tvm secrets engine mounted at a path (`vault_mount` of type
// tvm) with Vault's lease limits, plus the engine's own config
// (`<path>/config`: default_ttl, max_ttl, issuer, signing algorithm) so that
// Vault's leases and the engine agree, and roles are checked against the same
// limits at synth time.

import { GenericEndpoint } from '@cdktf/provider-vault/lib/generic-endpoint/index.js';
import { Mount } from '@cdktf/provider-vault/lib/mount/index.js';
import { Construct } from 'constructs';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../src/engine/config.ts';
import { normalizeMountPath } from '../../src/server/mounts.ts';
import { durationSeconds, type Duration } from './durations.ts';
import type { TvmPlugin } from './tvm-plugin.ts';

export interface TvmMountProps {
  /** Mount path without slashes. Default `tvm`. */
  path?: string;
  description?: string;
  /** Token ttl for roles that set none; also the mount's default lease ttl. Default 15m. */
  defaultTtl?: Duration;
  /** The longest any lease of this mount may live; also the mount's max lease ttl. Default 1h. */
  maxTtl?: Duration;
  /** The tokens' `iss`. Default (left unset): `<api address>/v1/<path>`. */
  issuer?: string;
  /** ES256 (the engine's default), EdDSA or RS256. */
  signingAlgorithm?: SigningAlgorithm;
  /** For a real Vault: the catalog entry the mount needs first (its name is the mount type). */
  plugin?: TvmPlugin;
}

/** The engine limits a role is validated against, in seconds (the engine's ConfigEntry fields). */
export interface RoleLimits {
  default_ttl: number;
  max_ttl: number;
}

export class TvmMount extends Construct {
  /** The mount path, without slashes (`tvm`). */
  readonly path: string;
  readonly limits: RoleLimits;
  readonly mount: Mount;
  /** The engine config write (`<path>/config`). */
  readonly config: GenericEndpoint;

  constructor(scope: Construct, id: string, props: TvmMountProps = {}) {
    super(scope, id);
    let path: string;
    try {
      path = normalizeMountPath(props.path ?? 'tvm').slice(0, -1);
    } catch (err) {
      throw new Error(`TvmMount: invalid path: ${(err as Error).message}`, { cause: err });
    }
    const defaultTtl = durationSeconds('default_ttl', props.defaultTtl ?? '15m');
    const maxTtl = durationSeconds('max_ttl', props.maxTtl ?? '1h');
    if (maxTtl <= 0) throw new Error('TvmMount: invalid max_ttl: must be greater than zero');
    if (defaultTtl <= 0) throw new Error('TvmMount: invalid default_ttl: must be greater than zero');
    if (defaultTtl > maxTtl) {
      throw new Error(`TvmMount: invalid default_ttl: ${defaultTtl}s is longer than max_ttl ${maxTtl}s`);
    }
    if (props.signingAlgorithm !== undefined && !SIGNING_ALGORITHMS.includes(props.signingAlgorithm)) {
      throw new Error(
        `TvmMount: invalid signing_algorithm: ${JSON.stringify(props.signingAlgorithm)} is not one of ${SIGNING_ALGORITHMS.join(', ')}`,
      );
    }
    if (props.issuer !== undefined && !/^https?:\/\/[^\s?#]+$/.test(props.issuer)) {
      throw new Error(`TvmMount: invalid issuer: ${JSON.stringify(props.issuer)} must be an http or https URL without query or fragment`);
    }
    this.path = path;
    this.limits = { default_ttl: defaultTtl, max_ttl: maxTtl };

    const pluginResource = props.plugin?.resource;
    this.mount = new Mount(this, 'mount', {
      path,
      type: props.plugin?.name ?? 'tvm',
      description: props.description ?? 'tvm: short-lived, narrowly scoped tokens',
      defaultLeaseTtlSeconds: defaultTtl,
      maxLeaseTtlSeconds: maxTtl,
      ...(pluginResource ? { dependsOn: [pluginResource] } : {}),
    });

    const config: Record<string, unknown> = { default_ttl: defaultTtl, max_ttl: maxTtl };
    if (props.issuer !== undefined) config.issuer = props.issuer;
    if (props.signingAlgorithm !== undefined) config.signing_algorithm = props.signingAlgorithm;
    this.config = new GenericEndpoint(this, 'config', {
      path: `${path}/config`,
      dataJson: JSON.stringify(config),
      // The read returns the effective issuer and algorithm too: compare only what we set.
      ignoreAbsentFields: true,
      // config has no delete; unmounting removes it with everything else.
      disableDelete: true,
      dependsOn: [this.mount],
    });
  }
}
