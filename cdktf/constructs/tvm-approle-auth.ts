// TvmAppRoleAuth: the AppRole auth method (`vault_auth_backend` of type
// approle), shared by every workload that logs in with a role id and a secret id.

import { AuthBackend } from '@cdktf/provider-vault/lib/auth-backend/index.js';
import { Construct } from 'constructs';

export interface TvmAppRoleAuthProps {
  /** Auth mount path without slashes. Default `approle`. */
  path?: string;
  description?: string;
}

export class TvmAppRoleAuth extends Construct {
  readonly backend: AuthBackend;
  /** The mount path as a Terraform reference (roles written under it depend on the backend). */
  readonly path: string;
  /** The mount path as configured, for messages and docs (`approle`). */
  readonly pathName: string;

  constructor(scope: Construct, id: string, props: TvmAppRoleAuthProps = {}) {
    super(scope, id);
    const path = props.path ?? 'approle';
    if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(path)) {
      throw new Error(`TvmAppRoleAuth: invalid path: ${JSON.stringify(path)}`);
    }
    this.pathName = path;
    this.backend = new AuthBackend(this, 'backend', {
      type: 'approle',
      path,
      description: props.description ?? 'tvm workloads: AppRole login',
    });
    this.path = this.backend.path;
  }
}
