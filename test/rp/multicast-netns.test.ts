/**
 * The multicast cores on real kernels: one RP host and eleven member hosts, each a network
 * namespace, joined by a Linux bridge with IGMP snooping. Ten members join the SSM channel
 * (RP, group) and drop 1–5% of what they receive; the eleventh does not join, finds out by
 * probing and is served by unicast. NACKs and repairs go over unicast UDP. Skipped, with
 * the reason, where namespaces cannot be built (no CAP_NET_ADMIN).
 */
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DATAGRAM_OVERHEAD } from '../../src/rp/multicast/datagram-codec.ts'
import type { HostConfig } from '../support/multicast-host.ts'
import { createNetnsLan, type NetnsLan, probeNetnsSupport } from '../support/netns.ts'
import { NetnsProcess } from '../support/netns-process.ts'
import { waitFor } from '../support/wait.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const NODE = join(ROOT, 'node_modules', '.bin', 'node')
const HOST_SCRIPT = join(ROOT, 'test', 'support', 'multicast-host.ts')
const MEMBERS = 11
const RP_PORT = 40_000
const TOPIC = 'netns-blocks'

const unsupported = await probeNetnsSupport()
if (unsupported !== undefined) console.warn(`multicast netns testbed skipped: ${unsupported}`)

/** A host process of the testbed, with its configuration in MC_HOST. */
class Host extends NetnsProcess {
  constructor(ns: string, cfg: HostConfig) {
    super(ns, NODE, HOST_SCRIPT, { MC_HOST: JSON.stringify(cfg) })
  }
}

describe.skipIf(unsupported !== undefined)('multicast on a real LAN of network namespaces', () => {
  let lan: NetnsLan
  const hosts: Host[] = []

  beforeAll(async () => {
    lan = await createNetnsLan(1 + MEMBERS)
  })

  afterAll(async () => {
    for (const h of hosts) h.kill()
    await lan?.destroy()
  })

  it('every member gets every message exactly once; the RP sends each message once on the LAN', async () => {
    // The bridge floods every group for a while after it starts: wait (quiet LAN) until it snoops.
    await lan.waitForSnooping(NODE)
    const rp = lan.hosts[0]
    const base = {
      rpAddress: rp.address,
      rpPort: RP_PORT,
      topic: TOPIC,
      keyHex: randomBytes(32).toString('hex'),
      keyId: 1,
      firstSeq: 1,
    }
    const sender = new Host(rp.ns, {
      ...base,
      role: 'sender',
      address: rp.address,
      join: false,
      ssm: true,
      loss: 0,
      seed: 1,
    })
    hosts.push(sender)
    await sender.next('ready')
    const members = lan.hosts.slice(1).map((h, i) => {
      const deaf = i === MEMBERS - 1
      const loss = 0.01 + (0.04 * i) / (MEMBERS - 1)
      const host = new Host(h.ns, {
        ...base,
        role: 'receiver',
        address: h.address,
        join: !deaf,
        ssm: i !== 0, // the first member joins any-source and filters the RP in software
        loss,
        seed: 1000 + i,
      })
      hosts.push(host)
      return host
    })
    const probes = await Promise.all(members.map((m) => m.next('probe')))
    expect(probes[0]).toMatchObject({ multicast: true, joinMode: 'asm' })
    expect(probes.slice(1, -1).every((p) => p.multicast === true && p.joinMode === 'ssm')).toBe(
      true,
    )
    expect(probes.at(-1)).toMatchObject({ multicast: false, joinMode: 'none' })

    // IGMP snooping has learnt every joined member (reports can be lost while ports come up;
    // hosts repeat them).
    const group = (await sender.next('ready')).group as string
    await lan.waitForMembers(
      group,
      lan.hosts.slice(1, MEMBERS).map((h) => h.switchPort),
    )
    // Probing is over: nothing else is sent until the publish (heartbeats follow messages).
    const socketBefore = (await sender.command({ cmd: 'counters' }))!.socket as {
      multicast: number
      unicast: number
    }
    const txBefore = await lan.counter(rp.ns, rp.iface, 'tx_packets')
    const deafPort = lan.hosts[MEMBERS].switchPort
    const deafPortBefore = await lan.counter(lan.switchNs, deafPort, 'tx_packets')
    // 300 single-datagram messages and 20 of three fragments.
    const sizes = [
      ...Array.from({ length: 300 }, () => 200),
      ...Array.from({ length: 20 }, () => 4000),
    ]
    const fragments = sizes.reduce((n, s) => n + Math.ceil(s / (1472 - DATAGRAM_OVERHEAD)), 0)
    for (const m of members) await m.command({ cmd: 'expect', count: sizes.length })
    await sender.command({ cmd: 'publish', sizes })
    const done = await Promise.all(members.map((m) => m.next('done', 30_000)))
    const rpStats = (await sender.command({ cmd: 'stats' }))!
    const txAfter = await lan.counter(rp.ns, rp.iface, 'tx_packets')
    const deafPortAfter = await lan.counter(lan.switchNs, deafPort, 'tx_packets')
    const memberStats = await Promise.all(members.map((m) => m.command({ cmd: 'stats' })))

    const core = rpStats.core as Record<string, number>
    const socket = rpStats.socket as { multicast: number; unicast: number }
    const kernelDrops = await Promise.all(
      lan.hosts.slice(1).map((h) => lan.udpReceiveBufferErrors(h.ns)),
    )
    const rows = memberStats.map((s, i) => ({
      member: i + 1,
      delivered: s!.count,
      twice: s!.deliveredTwice,
      droppedByTest: s!.dropped,
      kernelRcvbufErrors: kernelDrops[i],
      nacks: (s!.core as Record<string, number>).nacks,
      nackedSeqs: (s!.core as Record<string, number>).nackedSeqs,
      duplicateDatagrams: (s!.core as Record<string, number>).duplicates,
      lost: (s!.core as Record<string, number>).lost,
    }))
    console.table(rows)
    console.log('RP core', core, 'socket', socket, 'before publish', socketBefore)
    console.log(
      'RP tx_packets',
      txAfter - txBefore,
      'deaf member port tx_packets',
      deafPortAfter - deafPortBefore,
    )
    console.log(await lan.mdb())

    for (const [i, d] of done.entries()) {
      expect(d, `member ${i + 1}`).toMatchObject({ count: sizes.length, duplicates: 0, corrupt: 0 })
      expect(memberStats[i]).toMatchObject({ count: sizes.length, deliveredTwice: 0, corrupt: 0 })
      expect(members[i].events.filter((e) => e.event === 'lost')).toEqual([])
    }
    // Loss happened and was repaired.
    expect(memberStats.slice(0, -1).every((s) => (s!.dropped as number) > 0)).toBe(true)
    expect(core.repairDatagrams).toBeGreaterThan(0)
    // One multicast transmission per fragment on the LAN, whatever the number of members.
    expect(core.dataDatagrams).toBe(fragments)
    const fallback = rpStats.unicastMembers as string[]
    expect(fallback).toHaveLength(1)
    expect(fallback[0].startsWith(`${lan.hosts[MEMBERS].address}:`)).toBe(true)
    expect(core.unicastFallbackDatagrams).toBe(fragments)
    // The kernel's count of packets the RP's interface sent is exactly what the RP handed
    // it: multicast data + heartbeats + probes, and unicast repairs + GONE + fallback copies.
    expect(socket.multicast).toBe(core.dataDatagrams + core.heartbeats + core.probes)
    const multicastSent = socket.multicast - socketBefore.multicast
    const unicastSent = socket.unicast - socketBefore.unicast
    expect(multicastSent).toBe(core.dataDatagrams + core.heartbeats)
    expect(txAfter - txBefore).toBe(multicastSent + unicastSent)
    // The switch snoops IGMP: the port of the member that did not join carries what reached
    // that member's socket (unicast copies and repairs), not the multicast stream.
    const deaf = memberStats.at(-1)! as unknown as Record<string, number> & {
      core: Record<string, number>
    }
    const deafSocketGot = deaf.core.datagrams + deaf.dropped + deaf.sourceDropped
    expect(deafPortAfter - deafPortBefore - deafSocketGot).toBeLessThan(core.dataDatagrams / 2)

    // Another host on the LAN multicasts forged datagrams to the group: the SSM members'
    // kernels never pass them up, the any-source member's driver drops them by source, and
    // no core sees one.
    const SPOOFED = 200
    await members[MEMBERS - 1].command({ cmd: 'spoof', count: SPOOFED })
    await members[MEMBERS - 1].next('spoofed')
    let asm = (await members[0].command({ cmd: 'stats' }))!
    await waitFor(
      async () => {
        asm = (await members[0].command({ cmd: 'stats' }))!
        return (asm.sourceDropped as number) >= SPOOFED
      },
      { what: 'the any-source member dropping every spoofed datagram', pollMs: 50 },
    )
    expect(asm.sourceDropped).toBe(SPOOFED)
    const after = await Promise.all(members.map((m) => m.command({ cmd: 'stats' })))
    for (const [i, st] of after.entries()) {
      expect(st, `member ${i + 1}`).toMatchObject({ count: sizes.length, rejected: 0 })
      if (i > 0) expect(st!.sourceDropped, `member ${i + 1}`).toBe(0)
    }
    for (const m of members) await m.command({ cmd: 'exit' })
    await sender.command({ cmd: 'exit' })
  }, 90_000)
})
