// A role's `iam` field: validated at role write by each cloud's pure module,
// and stored normalised. Pure (no SDK, no I/O): the engine, the plugin bundle
// and the cdktf constructs import it.

import { awsModule } from './aws/module.ts';
import { azureModule } from './azure/module.ts';
import { IamFieldError } from './errors.ts';
import { gcpModule } from './gcp/module.ts';
import { kubernetesModule } from './kubernetes/module.ts';
import { CLOUDS, type CloudModule, type CloudName, type IamMapping, type RoleFacts } from './types.ts';

const MODULES: { [C in CloudName]: CloudModule<unknown> } = {
  aws: awsModule as CloudModule<unknown>,
  gcp: gcpModule as CloudModule<unknown>,
  azure: azureModule as CloudModule<unknown>,
  kubernetes: kubernetesModule as CloudModule<unknown>,
};

/**
 * The token signing algorithms each cloud's federation accepts for a web
 * identity / client assertion (null: the cloud does not verify the tvm token
 * itself, as Kubernetes, where the broker's own credentials act).
 */
export const FEDERATION_ALGORITHMS: { [C in CloudName]: readonly string[] | null } = {
  // AssumeRoleWithWebIdentity: RSA (RS256/384/512) or ECDSA (ES256/384/512) keys.
  aws: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
  // Workload Identity Federation (OIDC providers): RS256 and ES256.
  gcp: ['RS256', 'ES256'],
  // Entra ID federated identity credentials: RS256.
  azure: ['RS256'],
  kubernetes: null,
};

export function isCloud(name: string): name is CloudName {
  return (CLOUDS as readonly string[]).includes(name);
}

function federates(cloud: CloudName, target: Record<string, unknown>): boolean {
  // AWS's assume_role method signs with the broker's own credentials; the tvm token is not presented.
  if (cloud === 'aws' && target.method === 'assume_role') return false;
  // GCP with only a service account impersonates it with the broker's own credentials.
  if (cloud === 'gcp' && typeof target.workload_identity_provider !== 'string') return false;
  return FEDERATION_ALGORITHMS[cloud] !== null;
}

/** Why `algorithm` cannot sign tokens this cloud target accepts, or null. */
export function algorithmProblem(cloud: CloudName, target: Record<string, unknown>, algorithm: string): string | null {
  const accepted = FEDERATION_ALGORITHMS[cloud];
  if (!accepted || !federates(cloud, target) || accepted.includes(algorithm)) return null;
  return `${cloud} federation accepts tokens signed with ${accepted.join(', ')}; this mount signs with ${algorithm} (set config signing_algorithm to ${accepted.includes('ES256') ? 'ES256 or RS256' : 'RS256'})`;
}

/**
 * Validates a role's `iam` as written and returns it normalised (each cloud's
 * parsed target, defaults filled in), or null for "no mapping". Throws
 * IamFieldError naming the field: `iam`, `iam.<cloud>.<field>`, `read[i]`, `write[i]`.
 */
export function validateIamMapping(raw: unknown, role: RoleFacts, signingAlgorithm?: string): IamMapping | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new IamFieldError('iam', `expected an object with any of ${CLOUDS.join(', ')}`);
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) return null;
  const out: IamMapping = {};
  for (const [cloud, value] of entries) {
    if (!isCloud(cloud)) {
      throw new IamFieldError(`iam.${cloud}`, `unknown cloud ${JSON.stringify(cloud)}; expected one of ${CLOUDS.join(', ')}`);
    }
    const module = MODULES[cloud];
    const field = `iam.${cloud}`;
    const target = module.parseTarget(value, field);
    module.checkRole(target, role, field);
    // Stored as JSON: a round trip keeps only what survives storage.
    const stored = JSON.parse(JSON.stringify(target)) as Record<string, unknown>;
    if (signingAlgorithm !== undefined) {
      const problem = algorithmProblem(cloud, stored, signingAlgorithm);
      if (problem) throw new IamFieldError(field, problem);
    }
    out[cloud] = stored;
  }
  return out;
}

/** The audience a cloud needs on the tvm token it is given, or null when it takes the role's. */
export function cloudAudience(cloud: CloudName, target: Record<string, unknown>): string | null {
  if (!federates(cloud, target)) return null;
  return typeof target.audience === 'string' && target.audience !== '' ? target.audience : null;
}
