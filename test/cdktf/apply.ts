// Test helper, not a product feature: applies a synthesized cdk.tf.json to a
// Vault (here the dev server) by making exactly the Vault API calls the
// Terraform Vault provider (v5.6.0, the version @cdktf/provider-vault pins)
// makes for a first `terraform apply` of these resources, in dependency order.
// What each resource does was read from the provider's source:
//
//   provider configure   GET auth/token/lookup-self; GET sys/seal-status;
//                        POST auth/token/create (a child token, ttl 1200s, used for the rest)
//   vault_plugin         PUT sys/plugins/catalog/<type>/<name>; GET the same
//   vault_mount          POST sys/mounts/<path> {type, description, config{default_lease_ttl, max_lease_ttl, force_no_cache}, ...};
//                        GET sys/mounts/<path>
//   vault_policy         PUT sys/policies/acl/<name> {policy}; GET the same
//   vault_generic_endpoint  PUT <path> <data_json>; GET <path> unless disable_read
//   vault_auth_backend   POST sys/auth/<path> {type, description, config, local, ...};
//                        GET sys/auth/<path>; GET sys/mounts/auth/<path>/tune
//   vault_jwt_auth_backend  POST sys/auth/<path> {type, description, local};
//                        PUT auth/<path>/config {the config options that are set};
//                        GET sys/auth/<path>; GET auth/<path>/config
//   vault_approle_auth_backend_role  PUT auth/<backend>/role/<name> {token fields, bind_secret_id, secret_id_*};
//                        PUT .../role-id when role_id is set; GET the role; GET .../role-id
//   vault_jwt_auth_backend_role  PUT auth/<backend>/role/<name> {token fields, bound_*, user_claim, leeways, ...};
//                        GET the role
//
// References (`${vault_policy.x.name}`) are resolved from the state of the
// resources already applied, as Terraform does; `depends_on` and references
// give the order.

export interface TerraformJson {
  provider?: { vault?: Record<string, unknown>[] };
  resource?: Record<string, Record<string, Record<string, unknown>>>;
}

export interface VaultCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  status: number;
  /** The Terraform address of the resource the call was for ('provider' for configure). */
  for: string;
}

export interface ApplyOptions {
  /** What VAULT_TOKEN holds for the provider. */
  token: string;
  /** Overrides the provider block's address. */
  address?: string;
}

export interface ApplyResult {
  /** Terraform addresses in the order they were applied. */
  order: string[];
  calls: VaultCall[];
  /** Attributes of each applied resource (configuration plus what the provider read back). */
  state: Map<string, Record<string, unknown>>;
  /** Differences the read after each write found (what a `terraform plan` right after would show). */
  drift: string[];
}

export class VaultApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'VaultApiError';
    this.status = status;
  }
}

type Attrs = Record<string, unknown>;
interface Secret {
  data?: Attrs;
  auth?: { client_token?: string };
  [key: string]: unknown;
}

const REFERENCE = /\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}/g;

/** The addresses a value refers to (`${type.name.attr}`), and refuses any other expression. */
function referencesIn(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') {
    for (const m of value.matchAll(REFERENCE)) out.add(`${m[1]}.${m[2]}`);
    if (value.replace(REFERENCE, '').includes('${')) {
      throw new Error(`apply.ts resolves only plain references, not ${JSON.stringify(value)}`);
    }
  } else if (Array.isArray(value)) {
    for (const v of value) referencesIn(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) referencesIn(v, out);
  }
}

function resolve(value: unknown, state: Map<string, Attrs>): unknown {
  if (typeof value === 'string') {
    const lookup = (type: string, name: string, attr: string): unknown => {
      const attrs = state.get(`${type}.${name}`);
      if (!attrs || attrs[attr] === undefined) throw new Error(`unresolved reference ${type}.${name}.${attr}`);
      return attrs[attr];
    };
    const whole = /^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}$/.exec(value);
    if (whole) return lookup(whole[1], whole[2], whole[3]);
    return value.replace(REFERENCE, (_m, t: string, n: string, a: string) => String(lookup(t, n, a)));
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, state));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, state)]));
  }
  return value;
}

/** Terraform's order: every resource after what it refers to or depends on (Kahn, stable). */
export function applyOrder(tf: TerraformJson): { address: string; type: string; config: Attrs }[] {
  const nodes = new Map<string, { address: string; type: string; config: Attrs; deps: Set<string> }>();
  for (const [type, byName] of Object.entries(tf.resource ?? {})) {
    for (const [name, raw] of Object.entries(byName)) {
      const { '//': _meta, depends_on: dependsOn, ...config } = raw;
      const deps = new Set<string>();
      referencesIn(config, deps);
      for (const d of (dependsOn as string[] | undefined) ?? []) deps.add(d);
      nodes.set(`${type}.${name}`, { address: `${type}.${name}`, type, config, deps });
    }
  }
  for (const node of nodes.values()) {
    for (const d of node.deps) if (!nodes.has(d)) throw new Error(`${node.address} depends on unknown ${d}`);
  }
  const done = new Set<string>();
  const order: { address: string; type: string; config: Attrs }[] = [];
  while (order.length < nodes.size) {
    const ready = [...nodes.values()].filter((n) => !done.has(n.address) && [...n.deps].every((d) => done.has(d)));
    if (ready.length === 0) throw new Error('dependency cycle among the resources');
    for (const n of ready) {
      done.add(n.address);
      order.push({ address: n.address, type: n.type, config: n.config });
    }
  }
  return order;
}

class Client {
  readonly calls: VaultCall[] = [];
  constructor(
    private readonly address: string,
    public token: string,
  ) {}

  async request(forAddress: string, method: VaultCall['method'], path: string, body?: unknown): Promise<Secret | null> {
    const res = await fetch(`${this.address}/v1/${path}`, {
      method,
      headers: { 'X-Vault-Token': this.token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    this.calls.push({ method, path, ...(body === undefined ? {} : { body }), status: res.status, for: forAddress });
    // The Go client's Logical().Read and Sys().GetPolicy turn a 404 into "nothing there".
    if (res.status === 404 && method === 'GET') return null;
    if (res.status >= 400) {
      let errors: string[] = [text];
      try {
        errors = (JSON.parse(text) as { errors?: string[] }).errors ?? errors;
      } catch {
        // not JSON: keep the text
      }
      throw new VaultApiError(`${method} ${path}: Code: ${res.status}. Errors: * ${errors.join('; ')}`, res.status);
    }
    return text === '' ? null : (JSON.parse(text) as Secret);
  }
}

const str = (c: Attrs, k: string, d = ''): string => (typeof c[k] === 'string' ? (c[k] as string) : d);
const num = (c: Attrs, k: string): number => (typeof c[k] === 'number' ? (c[k] as number) : 0);
const bool = (c: Attrs, k: string, d = false): boolean => (typeof c[k] === 'boolean' ? (c[k] as boolean) : d);
const trim = (p: string): string => p.replace(/^\/+|\/+$/g, '');

/** The token fields every auth role resource writes on create (vault/auth_token.go updateTokenFields). */
function tokenFields(c: Attrs): Attrs {
  const data: Attrs = {};
  const setIf = (k: string): void => {
    const v = c[k];
    if (v === undefined || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) return;
    data[k] = v;
  };
  for (const k of ['token_bound_cidrs', 'token_policies', 'token_explicit_max_ttl', 'token_max_ttl']) setIf(k);
  if (typeof c.token_no_default_policy === 'boolean') data.token_no_default_policy = c.token_no_default_policy;
  setIf('token_period');
  data.token_type = str(c, 'token_type', 'default');
  for (const k of ['token_ttl', 'token_num_uses']) setIf(k);
  return data;
}

type Handler = (client: Client, address: string, c: Attrs, drift: string[]) => Promise<Attrs>;

const HANDLERS: Record<string, Handler> = {
  async vault_plugin(client, address, c) {
    const path = `sys/plugins/catalog/${str(c, 'type')}/${str(c, 'name')}`;
    const body: Attrs = { type: str(c, 'type'), command: str(c, 'command'), sha256: str(c, 'sha256'), args: c.args ?? [], env: c.env ?? [] };
    if (c.version !== undefined) body.version = c.version;
    await client.request(address, 'PUT', path, body);
    await client.request(address, 'GET', path);
    return { ...c, id: path };
  },

  async vault_mount(client, address, c) {
    const path = str(c, 'path');
    await client.request(address, 'POST', `sys/mounts/${path}`, {
      type: str(c, 'type'),
      description: str(c, 'description'),
      config: {
        options: null,
        default_lease_ttl: `${num(c, 'default_lease_ttl_seconds')}s`,
        max_lease_ttl: `${num(c, 'max_lease_ttl_seconds')}s`,
        force_no_cache: false,
      },
      local: bool(c, 'local'),
      seal_wrap: bool(c, 'seal_wrap'),
      external_entropy_access: bool(c, 'external_entropy_access'),
      options: c.options ?? {},
    });
    const read = await client.request(address, 'GET', `sys/mounts/${path}`);
    if (!read) throw new Error(`${address}: the mount is not there after creating it`);
    const mount = (read.data ?? read) as Attrs;
    return { ...c, id: path, accessor: mount.accessor };
  },

  async vault_policy(client, address, c, drift) {
    const name = str(c, 'name');
    await client.request(address, 'PUT', `sys/policies/acl/${name}`, { policy: str(c, 'policy') });
    const read = await client.request(address, 'GET', `sys/policies/acl/${name}`);
    if (read?.data?.policy !== c.policy) drift.push(`${address}: policy reads back as ${JSON.stringify(read?.data?.policy)}`);
    return { ...c, id: name };
  },

  async vault_generic_endpoint(client, address, c, drift) {
    const path = str(c, 'path');
    const written = JSON.parse(str(c, 'data_json')) as Attrs;
    await client.request(address, 'PUT', path, written);
    if (!bool(c, 'disable_read')) {
      const read = await client.request(address, 'GET', path);
      if (!read) {
        drift.push(`${address}: ${path} reads back as nothing (removed from state)`);
      } else {
        const data = read.data ?? {};
        const relevant = bool(c, 'ignore_absent_fields')
          ? Object.fromEntries(Object.keys(written).map((k) => [k, k in data ? data[k] : written[k]]))
          : data;
        if (canonical(relevant) !== canonical(written)) {
          drift.push(`${address}: data_json ${canonical(written)} reads back as ${canonical(relevant)}`);
        }
      }
    }
    return { ...c, id: path };
  },

  async vault_auth_backend(client, address, c) {
    const path = trim(str(c, 'path') || str(c, 'type'));
    await client.request(address, 'POST', `sys/auth/${path}`, enableAuthBody(c));
    const mount = await client.request(address, 'GET', `sys/auth/${path}`);
    if (!mount) throw new Error(`${address}: auth/${path} is not there after enabling it`);
    await client.request(address, 'GET', `sys/mounts/auth/${path}/tune`);
    return { ...c, id: path, path, accessor: (mount.data ?? mount).accessor };
  },

  async vault_jwt_auth_backend(client, address, c) {
    const path = trim(str(c, 'path', 'jwt'));
    await client.request(address, 'POST', `sys/auth/${path}`, enableAuthBody({ ...c, type: str(c, 'type', 'jwt') }));
    // matchingJwtMountConfigOptions: each one that is set is written.
    const options = [
      'oidc_discovery_url', 'oidc_discovery_ca_pem', 'oidc_client_id', 'oidc_client_secret', 'oidc_response_mode',
      'oidc_response_types', 'jwks_url', 'jwks_ca_pem', 'jwks_pairs', 'jwt_validation_pubkeys', 'bound_issuer',
      'jwt_supported_algs', 'default_role', 'provider_config', 'namespace_in_state',
    ];
    const config: Attrs = {};
    for (const k of options) if (c[k] !== undefined) config[k] = c[k];
    await client.request(address, 'PUT', `auth/${path}/config`, config);
    const mount = await client.request(address, 'GET', `sys/auth/${path}`);
    if (!mount) throw new Error(`${address}: auth/${path} is not there after enabling it`);
    const read = await client.request(address, 'GET', `auth/${path}/config`);
    if (!read) throw new Error(`${address}: auth/${path}/config is not there after writing it`);
    return { ...c, id: path, path, type: str(c, 'type', 'jwt'), accessor: (mount.data ?? mount).accessor };
  },

  async vault_approle_auth_backend_role(client, address, c) {
    const backend = trim(str(c, 'backend', 'approle'));
    const path = `auth/${backend}/role/${trim(str(c, 'role_name'))}`;
    const data: Attrs = { ...tokenFields(c), bind_secret_id: bool(c, 'bind_secret_id', true) };
    if (num(c, 'secret_id_num_uses')) data.secret_id_num_uses = c.secret_id_num_uses;
    if (num(c, 'secret_id_ttl')) data.secret_id_ttl = c.secret_id_ttl;
    if (Array.isArray(c.secret_id_bound_cidrs) && c.secret_id_bound_cidrs.length > 0) data.secret_id_bound_cidrs = c.secret_id_bound_cidrs;
    await client.request(address, 'PUT', path, data);
    if (typeof c.role_id === 'string') await client.request(address, 'PUT', `${path}/role-id`, { role_id: c.role_id });
    const role = await client.request(address, 'GET', path);
    if (!role) throw new Error(`${address}: ${path} is not there after writing it`);
    const roleId = await client.request(address, 'GET', `${path}/role-id`);
    return { ...c, id: path, backend, role_id: roleId?.data?.role_id };
  },

  async vault_jwt_auth_backend_role(client, address, c) {
    const backend = trim(str(c, 'backend', 'jwt'));
    const path = `auth/${backend}/role/${trim(str(c, 'role_name'))}`;
    const data: Attrs = {
      ...tokenFields(c),
      bound_audiences: c.bound_audiences ?? [],
      user_claim: str(c, 'user_claim'),
      user_claim_json_pointer: bool(c, 'user_claim_json_pointer'),
    };
    if (num(c, 'max_age')) data.max_age = c.max_age;
    if (Array.isArray(c.allowed_redirect_uris) && c.allowed_redirect_uris.length > 0) data.allowed_redirect_uris = c.allowed_redirect_uris;
    if (typeof c.role_type === 'string') data.role_type = c.role_type;
    if (typeof c.bound_subject === 'string') data.bound_subject = c.bound_subject;
    if (Array.isArray(c.oidc_scopes) && c.oidc_scopes.length > 0) data.oidc_scopes = c.oidc_scopes;
    if (typeof c.bound_claims_type === 'string') data.bound_claims_type = c.bound_claims_type;
    const claims: Record<string, string[]> = {};
    for (const [k, v] of Object.entries((c.bound_claims as Record<string, string> | undefined) ?? {})) {
      claims[k] = bool(c, 'disable_bound_claims_parsing') ? [v.trim()] : v.split(',').map((s) => s.trim());
    }
    data.bound_claims = claims;
    if (c.claim_mappings !== undefined) data.claim_mappings = c.claim_mappings;
    if (typeof c.groups_claim === 'string') data.groups_claim = c.groups_claim;
    data.clock_skew_leeway = num(c, 'clock_skew_leeway');
    data.expiration_leeway = num(c, 'expiration_leeway');
    data.not_before_leeway = num(c, 'not_before_leeway');
    data.verbose_oidc_logging = bool(c, 'verbose_oidc_logging');
    await client.request(address, 'PUT', path, data);
    const role = await client.request(address, 'GET', path);
    if (!role) throw new Error(`${address}: ${path} is not there after writing it`);
    return { ...c, id: path, backend };
  },
};

/** api.EnableAuthOptions as the Go client sends it (the config left at its zero value). */
function enableAuthBody(c: Attrs): Attrs {
  return {
    type: str(c, 'type'),
    description: str(c, 'description'),
    config: { options: null, default_lease_ttl: '', max_lease_ttl: '', force_no_cache: false },
    local: bool(c, 'local'),
    seal_wrap: false,
    external_entropy_access: false,
    options: null,
  };
}

/** JSON with sorted keys (Go's json.Marshal of a map), for comparing what was written with what is read. */
function canonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Attrs)[k])]));
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

/** A first `terraform apply` of the JSON: configure the provider, then create every resource in order. */
export async function applyTerraformJson(tf: TerraformJson, options: ApplyOptions): Promise<ApplyResult> {
  const providerBlock = tf.provider?.vault?.[0] ?? {};
  const address = (options.address ?? (providerBlock.address as string | undefined) ?? '').replace(/\/+$/, '');
  if (address === '') throw new Error('no Vault address: the provider block has none and none was given');
  const order = applyOrder(tf);
  for (const r of order) if (!HANDLERS[r.type]) throw new Error(`apply.ts does not know what the provider does for ${r.type}`);

  // Provider configure: look the token up, learn the version, derive a short-lived child token.
  const client = new Client(address, options.token);
  await client.request('provider', 'GET', 'auth/token/lookup-self');
  await client.request('provider', 'GET', 'sys/seal-status');
  const child = await client.request('provider', 'POST', 'auth/token/create', {
    display_name: 'terraform',
    ttl: '1200s',
    explicit_max_ttl: '1200s',
    renewable: false,
  });
  const childToken = child?.auth?.client_token;
  if (!childToken) throw new Error('auth/token/create returned no client token');
  client.token = childToken;

  const state = new Map<string, Attrs>();
  const drift: string[] = [];
  for (const r of order) {
    const config = resolve(r.config, state) as Attrs;
    try {
      state.set(r.address, await HANDLERS[r.type](client, r.address, config, drift));
    } catch (err) {
      throw new Error(`${r.address}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { order: order.map((r) => r.address), calls: client.calls, state, drift };
}
