// TvmRole: one role of the tvm engine (`<mount>/roles/<name>`), written with
// `vault_generic_endpoint`. The props mirror the role contract; they are
// checked at construction by the engine's own validation (parseRoleInput), so
// a bad role fails `cdktf synth` with the message the API would give.

import { GenericEndpoint } from '@cdktf/provider-vault/lib/generic-endpoint/index.js';
import { Construct } from 'constructs';
import { type RoleEntry } from '../../src/engine/roles.ts';
import { parseRoleInput } from '../../src/engine/path_roles.ts';
import type { Duration } from './durations.ts';
import type { TvmMount } from './tvm-mount.ts';

export interface TvmRoleProps {
  mount: TvmMount;
  /** Role name: 1 to 128 characters of A-Z a-z 0-9 . _ - */
  name: string;
  /** Resource patterns tokens of this role may read, e.g. `db://orders/*`. */
  read?: string[];
  /** Resource patterns tokens of this role may write. */
  write?: string[];
  /** Default token ttl; unset uses the mount's default ttl. */
  ttl?: Duration;
  /** Longest a lease may live with renewals; unset uses the mount's max ttl. */
  maxTtl?: Duration;
  /** The tokens' `aud`; empty means the issuer itself. */
  audiences?: string[];
  /** Issue only to callers inside these CIDRs; carried in the token. */
  boundCidrs?: string[];
  /** Live leases allowed at once; 0 (default) is unlimited. */
  maxActiveLeases?: number;
  /** Additional string claims put in every token. */
  extraClaims?: Record<string, string>;
  /** Cloud IAM mapping (stored as given). */
  iam?: Record<string, unknown>;
  /** `dpop`: every token is bound to the key the creds request names (cnf.jkt); default `none`. */
  binding?: 'none' | 'dpop';
  /** When tokens may be issued and used, e.g. `Mon-Fri 09:00-17:00`, read in `timeZone`. */
  allowedHours?: string[];
  /** The IANA time zone `allowedHours` are read in; default UTC. */
  timeZone?: string;
}

/** The role as the API takes it (`roles/<name>` field names). */
function apiInput(props: TvmRoleProps): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  const put = (field: string, value: unknown): void => {
    if (value !== undefined) input[field] = value;
  };
  put('read', props.read);
  put('write', props.write);
  put('ttl', props.ttl);
  put('max_ttl', props.maxTtl);
  put('audiences', props.audiences);
  put('bound_cidrs', props.boundCidrs);
  put('max_active_leases', props.maxActiveLeases);
  put('extra_claims', props.extraClaims);
  put('iam', props.iam);
  put('binding', props.binding);
  put('allowed_hours', props.allowedHours);
  put('time_zone', props.timeZone);
  return input;
}

export class TvmRole extends Construct {
  readonly name: string;
  /** The role as validated and normalised by the engine (durations in seconds). */
  readonly role: RoleEntry;
  /** `<mount>/roles/<name>` */
  readonly rolePath: string;
  /** `<mount>/creds/<name>`: where a workload vends a token of this role. */
  readonly credsPath: string;
  readonly endpoint: GenericEndpoint;

  constructor(scope: Construct, id: string, props: TvmRoleProps) {
    super(scope, id);
    let role: RoleEntry;
    try {
      role = parseRoleInput(props.name, apiInput(props), props.mount.limits);
    } catch (err) {
      throw new Error(`TvmRole ${JSON.stringify(props.name)}: ${(err as Error).message}`, { cause: err });
    }
    this.name = props.name;
    this.role = role;
    this.rolePath = `${props.mount.path}/roles/${props.name}`;
    this.credsPath = `${props.mount.path}/creds/${props.name}`;

    // iam: null means "none"; leave it out rather than write a null.
    const { iam, ...rest } = role;
    const data: Record<string, unknown> = iam === null ? rest : role;
    this.endpoint = new GenericEndpoint(this, 'role', {
      path: this.rolePath,
      dataJson: JSON.stringify(data),
      // A read returns the role plus its name: compare only the fields written,
      // so a plan after apply shows no drift, and a change made outside
      // Terraform to any of them does.
      ignoreAbsentFields: true,
      // The engine validates the role against the mount's config: write that first.
      dependsOn: [props.mount.config],
    });
  }
}
