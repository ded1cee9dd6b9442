// The contract between the cloud-neutral role, the per-cloud modules and the
// broker. Pure types: nothing here imports a cloud SDK, so the engine (and the
// plugin bundle) can validate a role's `iam` field without pulling one in.
//
// Layout of src/iam/:
//   types.ts, errors.ts          this contract, one error family
//   target.ts, scopes.ts         what the clouds' target parsers and scope tables share (pure)
//   mint.ts                      issue and renew for credentials minted afresh each time (GCP, Azure)
//   mapping.ts                   role.iam validation for the engine (pure)
//   <cloud>/target.ts            parse + validate that cloud's target (pure)
//   <cloud>/scopes.ts            scope translation table (pure)
//   <cloud>/provider.ts          the CloudProvider, with the cloud's own SDK
//   providers.ts                 builds the providers the broker is configured for
//
// Times are epoch milliseconds (`...At`), durations milliseconds (`...Ms`)
// unless a name says seconds (`...S`), as the cloud APIs count.

export const CLOUDS = ['aws', 'gcp', 'azure', 'kubernetes'] as const;
export type CloudName = (typeof CLOUDS)[number];

/** The scopes a grant carries: the token's read and write patterns (after any narrowing). */
export interface Scopes {
  read: string[];
  write: string[];
}

/** What a role needs a cloud module to know about it at role write. */
export interface RoleFacts extends Scopes {
  /** The role's audiences (empty: the issuer itself). */
  audiences: string[];
  /** The role's effective max_ttl in seconds (role's, else the mount's). */
  maxTtlS: number;
}

/**
 * One cloud's part of a role: validation and translation, no I/O.
 * `Target` is that cloud's validated `iam.<cloud>` object.
 */
export interface CloudModule<Target> {
  readonly cloud: CloudName;
  /** URL schemes whose patterns this cloud maps (`s3`, `dynamodb`; `gs`; `azblob`; `k8s`). */
  readonly schemes: readonly string[];
  /**
   * Validates `iam.<cloud>` as written by the user; throws IamFieldError naming
   * the field (for example `iam.aws.role_arn`). Returns the normalised target.
   */
  parseTarget(raw: unknown, field: string): Target;
  /**
   * Checks that every pattern of this cloud's schemes in `scopes` can be
   * expressed exactly (throws IamFieldError naming `read[i]`/`write[i]` and
   * the pattern otherwise) and that the role fits the cloud's limits (policy
   * size, minimum durations, required audience). Patterns of other schemes are
   * ignored; a target with no pattern of its schemes at all is refused.
   */
  checkRole(target: Target, role: RoleFacts, field: string): void;
}

/** A validated role.iam: any of the four clouds. Stored in the role as this JSON. */
export interface IamMapping {
  aws?: Record<string, unknown>;
  gcp?: Record<string, unknown>;
  azure?: Record<string, unknown>;
  kubernetes?: Record<string, unknown>;
}

/** Everything a provider needs to get one cloud credential for one lease. */
export interface GrantRequest<Target> {
  /** The broker's id for this grant (a UUID): cloud object and session names derive from it. */
  grantId: string;
  /** The tvm token's jti and the token itself (the web identity / client assertion). Secret. */
  jti: string;
  token: string;
  /** The token's `sub` (the workload identity). */
  subject: string;
  /** The tvm role name. */
  role: string;
  scopes: Scopes;
  target: Target;
  /** Now, on the broker's clock. */
  now: number;
  /** The lease's current expiry: the credential should not outlive it where the cloud allows. */
  leaseExpiresAt: number;
  /** The lease's hard end (issue time + max_ttl): the credential must never outlive it. */
  leaseMaxExpiresAt: number;
}

/**
 * The write-ahead entry: written to the broker's registry before the first
 * cloud-side change, non-secret, JSON. It names every object `issue` may
 * create, so a crash at any step can be rolled back from it alone.
 */
export interface CloudPlan {
  cloud: CloudName;
  /** Cloud-specific, deterministic from the request (names, ARNs, namespaces). */
  [key: string]: unknown;
}

/** The credential handed to the workload. Secret: never logged, never in a metric. */
export interface CloudCredential {
  cloud: CloudName;
  /** RFC 3339. */
  expires_at: string;
  /** Variables for `--format env` (AWS_ACCESS_KEY_ID ..., CLOUDSDK_AUTH_ACCESS_TOKEN, AZURE_STORAGE_SAS_TOKEN ..., KUBE_TOKEN ...). */
  env: Record<string, string>;
  /** The cloud's own fields (access key id, session token, access token, SAS URLs, server + token). */
  [key: string]: unknown;
}

export interface CloudGrant {
  credential: CloudCredential;
  expiresAt: number;
  /** Non-secret facts the teardown needs beyond the plan (assumed role id, object uids). JSON. */
  state: Record<string, unknown>;
}

export interface TeardownResult {
  /** What was done, for the event log ("deny policy tvm-deny-... on role ...", "relied on expiry at ..."). */
  detail: string;
  /** When set, call `cleanup` at this time (AWS: remove the deny policy once the credential expired). */
  cleanupAt: number | null;
}

export interface CloudProvider<Target = Record<string, unknown>> {
  readonly cloud: CloudName;
  readonly module: CloudModule<Target>;
  /** The write-ahead entry for this request. Pure. Throws IamFieldError when the scopes cannot be expressed. */
  plan(req: GrantRequest<Target>): CloudPlan;
  /** Gets the credential and creates what the plan names. On failure it has undone what it created, or leaves it to `teardown(plan, null, 'rollback')`. */
  issue(req: GrantRequest<Target>, plan: CloudPlan): Promise<CloudGrant>;
  /** After the lease was renewed (new token, later leaseExpiresAt): a fresh credential, or `current` when the cloud cannot do better yet. */
  renew(req: GrantRequest<Target>, plan: CloudPlan, current: CloudGrant): Promise<CloudGrant>;
  /**
   * Revoke and rollback share this one function. Idempotent: objects already
   * gone are fine. `grant` is null when the issue never completed (rollback).
   */
  teardown(plan: CloudPlan, grant: CloudGrant | null, reason: 'revoke' | 'rollback', now: number): Promise<TeardownResult>;
  /** The deferred step a teardown asked for (idempotent). */
  cleanup?(plan: CloudPlan, grant: CloudGrant | null, now: number): Promise<void>;
}
