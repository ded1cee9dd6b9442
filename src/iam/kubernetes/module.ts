// Kubernetes' part of a role (pure: no SDK, no I/O; the engine and the plugin
// bundle import it). The target is parsed in target.ts, the k8s:// scopes
// become Role rules in scopes.ts (the translation table is there); this file
// checks a role against both.
//
// Lifetime: TokenRequest refuses spec.expirationSeconds below 600 ("may not
// specify a duration less than 10 minutes"; at most 2^32). A role whose max_ttl
// is under 600 s would get tokens outliving the lease, so it is refused.
// The tvm token itself is never shown to Kubernetes (the broker creates the
// objects and requests the token with its own credentials), so the role's
// audiences are not checked here; `audiences` of the target are the
// Kubernetes token's.

import { IamFieldError } from '../errors.ts';
import type { CloudModule, RoleFacts } from '../types.ts';
import { K8S_SCHEME, roleRulesFor } from './scopes.ts';
import { parseKubernetesTarget, type KubernetesTarget } from './target.ts';

export type { KubernetesTarget } from './target.ts';
export { labelProblem, normaliseServer, parseKubernetesTarget, subdomainProblem, MAX_AUDIENCES } from './target.ts';
export {
  CLUSTER_SCOPED,
  hasK8sScope,
  K8S_SCHEME,
  NAMED_WRITE_VERBS,
  parseK8sPattern,
  READ_VERBS,
  roleRulesFor,
  SUBRESOURCE_VERBS,
  verbsFor,
  WELL_KNOWN_GROUPS,
  WRITE_VERBS,
  type K8sScope,
  type NamespaceRules,
  type PolicyRule,
} from './scopes.ts';

/** TokenRequest's minimum spec.expirationSeconds (10 minutes). */
export const MIN_TOKEN_EXPIRATION_S = 600;
/** TokenRequest's maximum spec.expirationSeconds (2^32; the API server's --service-account-max-token-expiration may cap lower). */
export const MAX_TOKEN_EXPIRATION_S = 2 ** 32;

function checkKubernetesRole(_target: KubernetesTarget, role: RoleFacts, field: string): void {
  if (roleRulesFor(role).length === 0) {
    throw new IamFieldError(field, `the role has no ${K8S_SCHEME}:// scope, so a Kubernetes token would carry no permission`);
  }
  if (role.maxTtlS < MIN_TOKEN_EXPIRATION_S) {
    throw new IamFieldError(
      'max_ttl',
      `${role.maxTtlS}s is below Kubernetes' minimum token lifetime of ${MIN_TOKEN_EXPIRATION_S}s (TokenRequest expirationSeconds): a token would outlive the lease's max_ttl; raise max_ttl to at least 10m`,
    );
  }
}

export const kubernetesModule: CloudModule<KubernetesTarget> = {
  cloud: 'kubernetes',
  schemes: [K8S_SCHEME],
  parseTarget: parseKubernetesTarget,
  checkRole: checkKubernetesRole,
};
