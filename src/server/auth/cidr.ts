// CIDR blocks as auth methods use them (Vault's cidrutil): validation of a
// field's list, membership of a client address, and subset checks between
// blocks (a secret ID's cidr_list must sit inside its role's blocks).

import { BlockList, isIP } from 'node:net';
import { invalidField, showValue } from '../../sdk/errors.ts';

interface Block {
  family: 4 | 6;
  /** The address as given (no prefix). */
  address: string;
  prefix: number;
}

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:10.0.0.1`). */
export function plainAddress(addr: string): string {
  return addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
}

function parseBlock(value: string): Block | null {
  const text = value.trim();
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return null;
    prefix = Number(bits);
    if (prefix > max) return null;
  }
  return { family, address, prefix };
}

/**
 * Validates a list of CIDR blocks or single addresses; returns them trimmed and
 * de-duplicated, in the order given. Throws a 400 naming the field and entry.
 */
export function checkCidrList(field: string, values: readonly string[]): string[] {
  if (values.length > 256) throw invalidField(field, `${values.length} entries; at most 256 are accepted`);
  const out: string[] = [];
  values.forEach((raw, i) => {
    const v = raw.trim();
    if (v === '') return;
    if (!parseBlock(v)) throw invalidField(`${field}[${i}]`, `${showValue(raw)} is not an IP address or CIDR block`);
    if (!out.includes(v)) out.push(v);
  });
  return out;
}

const lists = new Map<string, BlockList>();

function blockList(cidrs: readonly string[]): BlockList {
  const key = cidrs.join(',');
  let list = lists.get(key);
  if (!list) {
    list = new BlockList();
    for (const c of cidrs) {
      const b = parseBlock(c);
      if (b) list.addSubnet(b.address, b.prefix, b.family === 4 ? 'ipv4' : 'ipv6');
    }
    if (lists.size > 1024) lists.clear();
    lists.set(key, list);
  }
  return list;
}

/** Whether the client address lies in one of the blocks (false without an address). */
export function addressAllowed(cidrs: readonly string[], remoteAddr: string | undefined): boolean {
  if (!remoteAddr) return false;
  const addr = plainAddress(remoteAddr);
  const family = isIP(addr);
  if (family === 0) return false;
  return blockList(cidrs).check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether every block of `inner` lies inside one block of `outer`. */
export function cidrSubset(inner: readonly string[], outer: readonly string[]): boolean {
  const blocks = outer.map(parseBlock).filter((b): b is Block => b !== null);
  return inner.every((c) => {
    const b = parseBlock(c);
    if (!b) return false;
    return blocks.some((o) => {
      if (o.family !== b.family || b.prefix < o.prefix) return false;
      const one = new BlockList();
      one.addSubnet(o.address, o.prefix, o.family === 4 ? 'ipv4' : 'ipv6');
      return one.check(b.address, b.family === 4 ? 'ipv4' : 'ipv6');
    });
  });
}
