/** The IP of an address given as text: a multiaddr (`/ip4/1.2.3.4/tcp/1`) or a bare IP. */
export function ipOf(address: string): string {
  const m = /^\/ip[46]\/([^/]+)/.exec(address)
  return m === null ? address : m[1]
}
