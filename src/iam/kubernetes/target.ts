// The role's `iam.kubernetes` object: parse and validate (pure: no SDK, no I/O).
//
//   api_server       required: https://host[:port][/path]; http:// only on a loopback host
//                    (127.0.0.0/8, ::1, localhost), for tests and local clusters.
//                    It selects which of the broker's configured clusters is used.
//   namespace        required: a DNS-1123 label; the service account's namespace
//                    (and the credential's default namespace).
//   service_account  optional, a DNS-1123 subdomain. Absent (the default, and the exact
//                    choice): tvm creates a service account per grant, whose only
//                    permissions are that grant's. Set: tokens are minted for that
//                    existing account, bound to a per-grant Secret. RBAC gives an account
//                    the union of all its bindings, so its own permissions and those of
//                    every other grant on it at the same time ride along: a second
//                    concurrent grant with other scopes widens the first.
//   ca_cert          optional PEM (one or more CERTIFICATE blocks): the API server's CA,
//                    handed to the workload with the token (and trusted by the broker when
//                    its own cluster configuration names no CA).
//   audiences        optional list: the TokenRequest audiences. Default: none, which the
//                    API server fills with its own (the audiences it accepts itself).

import { IamFieldError } from '../errors.ts';
import { targetObject } from '../target.ts';

export interface KubernetesTarget {
  /** Normalised: no trailing slash. */
  api_server: string;
  namespace: string;
  /** Null: a service account per grant (the default). */
  service_account: string | null;
  ca_cert: string | null;
  /** Empty: the API server's own audiences. */
  audiences: string[];
}

const FIELDS = ['api_server', 'namespace', 'service_account', 'ca_cert', 'audiences'] as const;

/** DNS-1123 label: namespaces (at most 63). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 subdomain: service accounts, API groups (at most 253). */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_LABEL_LENGTH = 63;
export const MAX_SUBDOMAIN_LENGTH = 253;
/** A generous bound on the TokenRequest audiences a role may list. */
export const MAX_AUDIENCES = 10;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----/g;

/** Why `name` is not a DNS-1123 label, or null. */
export function labelProblem(name: string): string | null {
  if (name.length > MAX_LABEL_LENGTH) return `is longer than ${MAX_LABEL_LENGTH} characters`;
  if (!DNS1123_LABEL.test(name)) return 'is not a DNS-1123 label (lowercase letters, digits and "-", a letter or digit first and last)';
  return null;
}

/** Why `name` is not a DNS-1123 subdomain, or null. */
export function subdomainProblem(name: string): string | null {
  if (name.length > MAX_SUBDOMAIN_LENGTH) return `is longer than ${MAX_SUBDOMAIN_LENGTH} characters`;
  if (!DNS1123_SUBDOMAIN.test(name) || name.split('.').some((p) => p.length > MAX_LABEL_LENGTH)) {
    return 'is not a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", a letter or digit first and last)';
  }
  return null;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The API server URL as the broker compares it: scheme and host lowercased,
 * default port dropped, no trailing slash. Null when it is not an http(s) URL
 * without credentials, query or fragment.
 */
export function normaliseServer(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password || url.search || url.hash || raw.includes('?') || raw.includes('#')) return null;
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

function parseApiServer(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') {
    throw new IamFieldError(field, 'required: the API server URL, for example https://k8s.example.com:6443');
  }
  const server = normaliseServer(raw);
  if (server === null) {
    throw new IamFieldError(field, `${JSON.stringify(raw)} is not an https URL without credentials, query or fragment`);
  }
  const url = new URL(server);
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new IamFieldError(field, `${JSON.stringify(raw)}: plain http is only allowed on a loopback host (the token would cross the network in clear); use https`);
  }
  return server;
}

function parseCaCert(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new IamFieldError(field, 'expected a PEM string');
  const blocks = [...raw.matchAll(PEM_BLOCK)];
  const rest = raw.replace(PEM_BLOCK, '').trim();
  if (blocks.length === 0 || rest !== '') {
    throw new IamFieldError(field, 'expected one or more PEM blocks "-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----" and nothing else');
  }
  for (const b of blocks) {
    const body = b[1].replace(/\s+/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
      throw new IamFieldError(field, 'a CERTIFICATE block is not valid base64');
    }
  }
  return `${blocks.map((b) => `-----BEGIN CERTIFICATE-----\n${b[1].replace(/\s+/g, '').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----`).join('\n')}\n`;
}

function parseAudiences(raw: unknown, field: string): string[] {
  if (!Array.isArray(raw)) throw new IamFieldError(field, 'expected a list of strings');
  if (raw.length > MAX_AUDIENCES) throw new IamFieldError(field, `at most ${MAX_AUDIENCES} audiences`);
  const out: string[] = [];
  raw.forEach((a, i) => {
    if (typeof a !== 'string' || a === '' || a.length > 1024 || /\s/.test(a)) {
      throw new IamFieldError(`${field}[${i}]`, 'expected a non-empty string without whitespace, at most 1,024 characters');
    }
    if (!out.includes(a)) out.push(a);
  });
  return out;
}

/** Validates `iam.kubernetes` as written; throws IamFieldError naming `<field>.<key>`. */
export function parseKubernetesTarget(raw: unknown, field: string): KubernetesTarget {
  const expected = 'api_server and namespace (and optionally service_account, ca_cert, audiences)';
  const input = targetObject(raw, field, { expected, fields: FIELDS, anyOf: true });
  const api_server = parseApiServer(input.api_server, `${field}.api_server`);
  const ns = input.namespace;
  if (typeof ns !== 'string' || ns === '') {
    throw new IamFieldError(`${field}.namespace`, 'required: the namespace of the service account the token is for');
  }
  const nsBad = labelProblem(ns);
  if (nsBad) throw new IamFieldError(`${field}.namespace`, `${JSON.stringify(ns)} ${nsBad}`);
  let service_account: string | null = null;
  if (input.service_account !== undefined && input.service_account !== null) {
    const sa = input.service_account;
    if (typeof sa !== 'string' || sa === '') throw new IamFieldError(`${field}.service_account`, 'expected a non-empty string');
    const bad = subdomainProblem(sa);
    if (bad) throw new IamFieldError(`${field}.service_account`, `${JSON.stringify(sa)} ${bad}`);
    service_account = sa;
  }
  const ca_cert = input.ca_cert === undefined || input.ca_cert === null ? null : parseCaCert(input.ca_cert, `${field}.ca_cert`);
  const audiences = input.audiences === undefined || input.audiences === null ? [] : parseAudiences(input.audiences, `${field}.audiences`);
  return { api_server, namespace: ns, service_account, ca_cert, audiences };
}
