// issue and renew for a cloud whose credential is minted afresh from the tvm
// token each time and creates nothing in the cloud (GCP's access token,
// Azure's user delegation SAS). A renewal mints again with the renewed token;
// the previous credential lapses on its own.

import { CloudError } from './errors.ts';
import type { CloudGrant, CloudName, CloudPlan, CloudProvider, GrantRequest } from './types.ts';

/** A credential for the plan, or null when the lease's hard end leaves no time for one. */
export type Mint<Target, Plan extends CloudPlan> = (req: GrantRequest<Target>, plan: Plan) => Promise<CloudGrant | null>;

/**
 * `issue` refuses (ERR_CLOUD_LIMIT) when `mint` finds no time left before the
 * lease's hard end; `renew` keeps the current credential then.
 * `credential` names it in that message ("a GCP token").
 */
export function mintedGrants<Target, Plan extends CloudPlan>(
  cloud: CloudName,
  credential: string,
  mint: Mint<Target, Plan>,
): Pick<CloudProvider<Target>, 'issue' | 'renew'> {
  return {
    async issue(req, plan) {
      const grant = await mint(req, plan as Plan);
      if (!grant) {
        const hardEnd = new Date(req.leaseMaxExpiresAt).toISOString();
        throw new CloudError(cloud, 'ERR_CLOUD_LIMIT', `the lease's hard end ${hardEnd} leaves no time for ${credential}`);
      }
      return grant;
    },
    async renew(req, plan, current) {
      return (await mint(req, plan as Plan)) ?? current;
    },
  };
}
