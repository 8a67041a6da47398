import { describe, expect, it } from 'vitest'
import { UdpEndpoint } from '../../src/broker/udp-endpoint.ts'
import { InvalidParametersError } from '../../src/common/errors.ts'

describe('UdpEndpoint', () => {
  it('with several SO_REUSEPORT sockets, receives every source on one port and answers from it', async () => {
    const server = await UdpEndpoint.bind({ sockets: 4 })
    const senders = await Promise.all(Array.from({ length: 16 }, () => UdpEndpoint.bind()))
    try {
      const from = new Set<string>()
      const all = new Promise<void>((resolve) => {
        server.onFrame((peer, frame) => {
          from.add(peer)
          server.send(peer, frame) // echo, out of the same port
          if (from.size === senders.length) resolve()
        })
      })
      const echoes = Promise.all(
        senders.map((s) => new Promise<string>((resolve) => s.onFrame((peer) => resolve(peer)))),
      )
      for (const s of senders) s.send(server.address, new Uint8Array([1]))
      await all
      expect([...from].sort()).toEqual(senders.map((s) => s.address).sort())
      expect(new Set(await echoes)).toEqual(new Set([server.address]))
    } finally {
      await Promise.all([server, ...senders].map((e) => e.close()))
    }
  })

  it('refuses a socket count below 1', async () => {
    await expect(UdpEndpoint.bind({ sockets: 0 })).rejects.toThrow(InvalidParametersError)
  })
})
