/**
 * A LAN of real Linux network namespaces for tests: one namespace per host, joined through
 * veth pairs to a Linux bridge with IGMP snooping and a querier (the provider's switch),
 * itself in a namespace of its own. Addresses come from 10.77.0.0/24 and exist only on the
 * interfaces created here; nothing is added to the caller's namespace. IPv6 is off and
 * neighbours are static, so a host's interface counters count only what the test sends.
 * Needs CAP_NET_ADMIN; {@link probeNetnsSupport} says whether it is there.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { waitFor } from './wait.ts'

const run = promisify(execFile)

/** One host of the testbed. */
export interface NetnsHost {
  /** Namespace name. */
  readonly ns: string
  /** The LAN interface inside the namespace. */
  readonly iface: string
  /** Its IPv4 address. */
  readonly address: string
  /** The switch port (bridge side of the veth) this host hangs off. */
  readonly switchPort: string
}

/** A built testbed. */
export interface NetnsLan {
  /** The hosts, in order; host i has address 10.77.0.(i + 1). */
  readonly hosts: NetnsHost[]
  /** The switch's namespace. */
  readonly switchNs: string
  /** Reads a counter of /sys/class/net/IF/statistics inside `ns`. */
  counter(
    ns: string,
    iface: string,
    name: 'tx_packets' | 'rx_packets' | 'tx_bytes' | 'multicast',
  ): Promise<number>
  /** UDP receive-buffer overflows inside `ns` (`RcvbufErrors` of /proc/net/snmp). */
  udpReceiveBufferErrors(ns: string): Promise<number>
  /** Counters of /proc/net/snmp inside `ns`, as `Udp.OutDatagrams`, `Tcp.OutSegs`, ... */
  snmp(ns: string): Promise<Record<string, number>>
  /** The bridge's multicast database, as `bridge mdb show` prints it. */
  mdb(): Promise<string>
  /**
   * Waits until the bridge has learnt, from IGMP reports, that each of `ports` is a member
   * of `group` (polled, at most `timeoutMs`); throws with the table it has otherwise.
   */
  waitForMembers(group: string, ports: string[], timeoutMs?: number): Promise<void>
  /**
   * Waits until the switch forwards a group only to the ports that joined it. A Linux
   * bridge floods every group for a while after it starts (about 10 s here, until its own
   * querier counts as present), whatever it has learnt. Checked with traffic: host 1 joins
   * a test group, host 0 sends to it, host 2's port must carry none of it. Needs 3 hosts.
   */
  waitForSnooping(node: string, timeoutMs?: number): Promise<void>
  /** Deletes every namespace (and with them the veths and the bridge). */
  destroy(): Promise<void>
}

/** The group and port {@link NetnsLan.waitForSnooping} tests with (not one a topic maps to: port 9). */
const SNOOP_GROUP = '232.255.0.1'
const SNOOP_PORT = 9

async function ip(args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await run('ip', args)).stdout
  return new Promise((resolve, reject) => {
    const child = execFile('ip', args, (err, stdout) => (err ? reject(err) : resolve(stdout)))
    child.stdin?.end(input)
  })
}

/**
 * Whether this process can build namespaces: undefined when it can, else the reason (to
 * print when the test is skipped).
 */
export async function probeNetnsSupport(): Promise<string | undefined> {
  const name = `cmprobe${process.pid}`
  try {
    await ip(['netns', 'add', name])
  } catch (err) {
    return `cannot create a network namespace (needs root with CAP_NET_ADMIN): ${(err as Error).message.trim()}`
  }
  try {
    await ip(['-n', name, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '1'])
  } catch (err) {
    return `no Linux bridge with IGMP snooping here: ${(err as Error).message.trim()}`
  } finally {
    await ip(['netns', 'del', name]).catch(() => {})
  }
  return undefined
}

/** Builds a LAN of `hostCount` hosts; on any failure, removes what it made and throws. */
export async function createNetnsLan(hostCount: number): Promise<NetnsLan> {
  if (hostCount < 1 || hostCount > 200) throw new RangeError('1–200 hosts')
  const tag = `cm${process.pid % 100000}`
  const switchNs = `${tag}sw`
  const hosts: NetnsHost[] = Array.from({ length: hostCount }, (_, i) => ({
    ns: `${tag}h${i}`,
    iface: 'eth0',
    address: `10.77.0.${i + 1}`,
    switchPort: `p${i}`,
  }))
  const made: string[] = []
  const destroy = async () => {
    for (const ns of made.splice(0)) await ip(['netns', 'del', ns]).catch(() => {})
  }
  try {
    for (const ns of [switchNs, ...hosts.map((h) => h.ns)]) {
      await ip(['netns', 'add', ns])
      made.push(ns)
      // No IPv6: no router solicitations or MLD reports in the counters.
      await run('ip', [
        'netns',
        'exec',
        ns,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
      ])
      await ip(['-n', ns, 'link', 'set', 'lo', 'up'])
    }
    await ip([
      '-n',
      switchNs,
      'link',
      'add',
      'br0',
      'type',
      'bridge',
      'mcast_snooping',
      '1',
      'mcast_querier',
      '1',
      'mcast_igmp_version',
      '3',
    ])
    await ip(['-n', switchNs, 'link', 'set', 'br0', 'up'])
    for (const h of hosts) {
      await ip([
        'link',
        'add',
        h.iface,
        'netns',
        h.ns,
        'type',
        'veth',
        'peer',
        'name',
        h.switchPort,
        'netns',
        switchNs,
      ])
      await ip(['-n', switchNs, 'link', 'set', h.switchPort, 'master', 'br0'])
      await ip(['-n', switchNs, 'link', 'set', h.switchPort, 'up'])
      await ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', h.iface])
      await ip(['-n', h.ns, 'link', 'set', h.iface, 'up'])
      await ip(['-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', h.iface])
    }
    // Static neighbours: no ARP exchange shows up in the counters.
    const macs: string[] = []
    for (const h of hosts) {
      const [link] = JSON.parse(await ip(['-j', '-n', h.ns, 'link', 'show', h.iface])) as {
        address: string
      }[]
      macs.push(link.address)
    }
    for (const h of hosts) {
      const lines = hosts
        .map((o, j) =>
          o === h
            ? ''
            : `neigh replace ${o.address} lladdr ${macs[j]} dev ${h.iface} nud permanent\n`,
        )
        .join('')
      await ip(['-n', h.ns, '-batch', '-'], lines)
    }
    // Links come up asynchronously (the kernel's link watch batches carrier changes): an IGMP
    // report sent before a bridge port forwards is lost, so wait for every port to forward.
    const states = async () =>
      (
        await run('ip', [
          'netns',
          'exec',
          switchNs,
          'sh',
          '-c',
          'cat /sys/class/net/p*/brport/state',
        ])
      ).stdout
        .trim()
        .split('\n')
    let seen: string[] = []
    await waitFor(
      async () => {
        seen = await states()
        return seen.filter((x) => x === '3').length === hostCount
      },
      {
        what: 'every bridge port forwarding',
        pollMs: 25,
        detail: () => `bridge port states ${seen.join(',')} (3 = forwarding)`,
      },
    )
  } catch (err) {
    await destroy()
    throw err
  }
  const snmp = async (ns: string) => {
    const { stdout } = await run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'])
    const out: Record<string, number> = {}
    const lines = stdout.trim().split('\n')
    // Pairs of lines: "Proto: Name Name ..." then "Proto: value value ...".
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i].split(/\s+/)
      const values = lines[i + 1].split(/\s+/)
      const proto = names[0].replace(':', '')
      for (let j = 1; j < names.length; j++) out[`${proto}.${names[j]}`] = Number(values[j])
    }
    return out
  }
  const mdb = async () =>
    (await run('ip', ['netns', 'exec', switchNs, 'bridge', 'mdb', 'show'])).stdout
  return {
    hosts,
    switchNs,
    counter: async (ns, iface, name) => {
      const { stdout } = await run('ip', [
        'netns',
        'exec',
        ns,
        'cat',
        `/sys/class/net/${iface}/statistics/${name}`,
      ])
      return Number(stdout.trim())
    },
    udpReceiveBufferErrors: async (ns) => (await snmp(ns))['Udp.RcvbufErrors'],
    snmp,
    mdb,
    waitForSnooping: async (node, timeoutMs = 30_000) => {
      const [sender, joiner, observer] = hosts
      // The joiner stays in the group until the check is over, then leaves (exits).
      const join = execFile('ip', [
        'netns',
        'exec',
        joiner.ns,
        node,
        '-e',
        `const s = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true });
         s.bind(${SNOOP_PORT}, () => s.addMembership('${SNOOP_GROUP}', '${joiner.address}'));
         process.stdin.on('end', () => process.exit(0)); process.stdin.resume()`,
      ])
      const send = () =>
        run('ip', [
          'netns',
          'exec',
          sender.ns,
          node,
          '-e',
          `const s = require('node:dgram').createSocket('udp4');
           s.bind(0, '${sender.address}', () => { s.setMulticastInterface('${sender.address}');
           s.send(Buffer.alloc(8), ${SNOOP_PORT}, '${SNOOP_GROUP}', () => s.close()) })`,
        ])
      const tx = (h: NetnsHost) =>
        run('ip', [
          'netns',
          'exec',
          switchNs,
          'cat',
          `/sys/class/net/${h.switchPort}/statistics/tx_packets`,
        ]).then((r) => Number(r.stdout.trim()))
      try {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const before = [await tx(joiner), await tx(observer)]
          await send()
          const after = [await tx(joiner), await tx(observer)]
          // Reached the member and not the other port.
          if (after[0] > before[0] && after[1] === before[1]) return
          if (Date.now() > deadline) {
            throw new Error(`the switch still floods ${SNOOP_GROUP} after ${timeoutMs} ms`)
          }
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      } finally {
        join.stdin?.end()
        join.kill()
      }
    },
    waitForMembers: async (group, ports, timeoutMs = 10_000) => {
      const members = async () => {
        const entries = (await mdb()).split('\n').filter((l) => l.includes(`grp ${group}`))
        return new Set(entries.map((l) => /port (\S+)/.exec(l)?.[1]))
      }
      let known = new Set<string | undefined>()
      await waitFor(
        async () => {
          known = await members()
          return ports.every((p) => known.has(p))
        },
        {
          what: `the bridge learning every member of ${group}`,
          timeoutMs,
          pollMs: 25,
          detail: () => `it knows ${[...known].join(',')}, not all of ${ports.join(',')}`,
        },
      )
    },
    destroy,
  }
}
