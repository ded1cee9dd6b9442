// Bound CIDRs: the rule a role's bound_cidrs follow, and whether an address is
// inside them. One module for the engine (at issue) and the PEP (at use).

import { BlockList, isIP } from 'node:net';

/** Returns why the text is not a CIDR (or a bare address), or null when it is one. */
export function cidrProblem(cidr: string): string | null {
  const [addr, bits, extra] = cidr.split('/');
  const family = isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max)) return 'is not a CIDR such as 10.0.0.0/8 or fd00::/8';
  return null;
}

const blockLists = new WeakMap<readonly string[], BlockList>();

function blockListOf(cidrs: readonly string[]): BlockList {
  let list = blockLists.get(cidrs);
  if (!list) {
    list = new BlockList();
    for (const cidr of cidrs) {
      if (cidrProblem(cidr) !== null) continue;
      const [net, bits] = cidr.split('/');
      const type = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      list.addSubnet(net, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
    }
    blockLists.set(cidrs, list);
  }
  return list;
}

/**
 * Whether the address is inside one of the CIDRs. An IPv4-mapped IPv6
 * address (::ffff:10.0.0.1, as a dual-stack socket reports it) counts as its
 * IPv4 address; a missing or unparsable address is outside. Entries that are
 * not CIDRs match nothing (the engine refuses them at role write).
 */
export function addressInside(cidrs: readonly string[], remoteAddr: string | undefined): boolean {
  if (!remoteAddr) return false;
  const addr = remoteAddr.startsWith('::ffff:') && isIP(remoteAddr.slice(7)) === 4 ? remoteAddr.slice(7) : remoteAddr;
  const family = isIP(addr);
  if (family === 0) return false;
  return blockListOf(cidrs).check(addr, family === 6 ? 'ipv6' : 'ipv4');
}
