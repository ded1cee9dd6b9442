// A backend's routes and secret types, declared as data (Vault's framework.Path
// and framework.Secret): a pattern with typed fields, handlers per operation,
// an existence check, help text.

import type { FieldData, Fields } from './fields.ts';
import type { LogicalRequest, LogicalResponse, Operation, SpecialPaths, Storage } from './logical.ts';

export type Handler = (req: LogicalRequest, fields: FieldData) => Promise<LogicalResponse | null>;

export interface Route {
  /** Regular-expression source for the path, anchored by the framework; named groups become fields. */
  pattern: string;
  fields: Fields;
  operations: Partial<Record<Operation, Handler>>;
  /** Decides create vs update for ACL checks; omit for paths that are never created. */
  existenceCheck?: (req: LogicalRequest, fields: FieldData) => Promise<boolean>;
  /**
   * Path captures that are names compared without case or surrounding space:
   * the canonical path (resolve-path) has them trimmed and lower-cased, so the
   * ACL is checked on the one form the handler uses.
   */
  caseInsensitive?: string[];
  synopsis: string;
  description: string;
}

export interface SecretType {
  type: string;
  renew: (req: LogicalRequest) => Promise<LogicalResponse | null>;
  revoke: (req: LogicalRequest) => Promise<LogicalResponse | null>;
}

export interface FrameworkOptions {
  /** The backend's type (`tvm`): names its OpenAPI operations. */
  name?: string;
  /** The backend's version, shown in its OpenAPI document. */
  version?: string;
  /** One sentence on what the backend is, for its OpenAPI document (default: the tvm engine's). */
  description?: string;
  /** Its OpenAPI operations' tag, as Vault's: secrets (the default), auth, system, identity. */
  tag?: string;
  help: string;
  routes: Route[];
  secrets: SecretType[];
  specialPaths: SpecialPaths;
  /**
   * A field no route declares: refused with a 400 naming it (the default: the
   * tvm engine), or accepted with Vault's warning (Vault's own backends: clients
   * such as the Terraform provider send fields of newer versions), or
   * accepted silently (the server's sys and token backends, as the dev server
   * always has).
   */
  unknownFields?: 'refuse' | 'warn' | 'ignore';
  /** Runs on the `rollback` operation, as Vault's PeriodicFunc: housekeeping. */
  periodic?: (storage: Storage) => Promise<void>;
  initialize?: (storage: Storage) => Promise<void>;
  invalidate?: (key: string) => void;
  cleanup?: () => Promise<void>;
}

