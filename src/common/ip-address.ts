/**
 * The IP of an address given as text (a multiaddr such as `/ip4/1.2.3.4/tcp/1`, or a bare IP),
 * one key per host whatever form it came in: an IPv4-mapped IPv6 address, as Node's sockets
 * give it (`::ffff:1.2.3.4`) or as libp2p writes it in a multiaddr (`/ip6/::ffff:102:304`), is
 * its IPv4 address.
 */
export function ipOf(address: string): string {
  const m = /^\/ip[46]\/([^/]+)/.exec(address)
  const ip = m === null ? address : m[1]
  return mappedIpv4(ip) ?? ip
}

/** The IPv4 address an IPv4-mapped IPv6 address carries, or undefined for any other address. */
function mappedIpv4(ip: string): string | undefined {
  const rest = /^::ffff:(.+)$/i.exec(ip)?.[1]
  if (rest === undefined) return undefined
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(rest)) return rest
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(rest)
  if (hex === null) return undefined
  const high = Number.parseInt(hex[1], 16)
  const low = Number.parseInt(hex[2], 16)
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
}
