// The key a source address is limited by (the failed-authentication throttle, logs of it).

/**
 * The key an address is limited by: IPv4 as it is (also when IPv4-mapped), and IPv6 by its /64,
 * since one host usually holds a whole /64 and could otherwise try from 2^64 addresses.
 */
export function addressKey(ip: string): string {
  if (ip.indexOf(':') === -1) return ip;
  if (ip.startsWith('::ffff:') && ip.indexOf('.') !== -1) return ip.slice(7);
  const zone = ip.indexOf('%');
  const bare = zone === -1 ? ip : ip.slice(0, zone);
  const gap = bare.indexOf('::');
  let groups: string[];
  if (gap === -1) {
    groups = bare.split(':');
  } else {
    const head = gap === 0 ? [] : bare.slice(0, gap).split(':');
    const tail = gap + 2 === bare.length ? [] : bare.slice(gap + 2).split(':');
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  const prefix = groups.slice(0, 4).map((g) => (g.replace(/^0+/, '') || '0').toLowerCase());
  return `${prefix.join(':')}::/64`;
}
