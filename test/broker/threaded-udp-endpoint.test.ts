import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import {
  DatagramBatchWriter,
  ipv4ToNumber,
  numberToIpv4,
  readDatagramBatch,
} from '../../src/broker/datagram-batch.ts'
import { ThreadedUdpEndpoint } from '../../src/broker/threaded-udp-endpoint.ts'
import { UdpEndpoint } from '../../src/broker/udp-endpoint.ts'
import { DecodeError, InvalidParametersError } from '../../src/common/errors.ts'

describe('datagram batches', () => {
  it('carry IPv4 and IPv6 peers and their bytes, in order, and refuse what does not fit', () => {
    const w = new DatagramBatchWriter(64)
    expect(w.add(ipv4ToNumber('127.0.0.1'), '127.0.0.1', 4000, new Uint8Array([1, 2, 3]))).toBe(
      true,
    )
    expect(w.add(-1, '::1', 65_535, new Uint8Array([9]))).toBe(true)
    expect(w.add(-1, '::1', 1, new Uint8Array(64))).toBe(false)
    const batch = w.take()!
    expect(w.take()).toBeUndefined()
    const seen: [string, number, number[]][] = []
    const n = readDatagramBatch(batch, (ip, address, port, frame) =>
      seen.push([ip >= 0 ? numberToIpv4(ip) : address, port, [...frame]]),
    )
    expect(n).toBe(2)
    expect(seen).toEqual([
      ['127.0.0.1', 4000, [1, 2, 3]],
      ['::1', 65_535, [9]],
    ])
    expect(() => readDatagramBatch(batch.slice(0, batch.byteLength - 1), () => {})).toThrow(
      DecodeError,
    )
  })

  it('parse only dotted IPv4 addresses', () => {
    expect(ipv4ToNumber('255.255.255.255')).toBe(0xffffffff)
    expect(numberToIpv4(ipv4ToNumber('10.20.30.40'))).toBe('10.20.30.40')
    for (const bad of ['::1', '1.2.3', '1.2.3.256', '1..2.3', '1.2.3.4.5', '']) {
      expect(ipv4ToNumber(bad)).toBe(-1)
    }
  })
})

describe('ThreadedUdpEndpoint', () => {
  it('receives every source on one port in worker threads and answers from that port', async () => {
    const server = await ThreadedUdpEndpoint.bind({ threads: 2, socketsPerThread: 2 })
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
        senders.map(
          (s) =>
            new Promise<[string, number]>((resolve) =>
              s.onFrame((peer, frame) => resolve([peer, frame[0]])),
            ),
        ),
      )
      for (const [i, s] of senders.entries()) s.send(server.address, new Uint8Array([i]))
      await all
      expect([...from].sort()).toEqual(senders.map((s) => s.address).sort())
      const replies = await echoes
      expect(new Set(replies.map(([peer]) => peer))).toEqual(new Set([server.address]))
      expect(replies.map(([, byte]) => byte)).toEqual(senders.map((_, i) => i))
      expect(server.received).toBe(16)
      expect(server.handed).toBe(16)
      expect(server.sent).toBe(16)
    } finally {
      await Promise.all([server.close(), ...senders.map((e) => e.close())])
    }
  })

  it('drops and counts oversized datagrams', async () => {
    const server = await ThreadedUdpEndpoint.bind({ threads: 1, maxDatagramBytes: 8 })
    const sender = await UdpEndpoint.bind()
    try {
      const small = new Promise<number>((resolve) => server.onFrame((_, f) => resolve(f.length)))
      sender.send(server.address, new Uint8Array(100))
      sender.send(server.address, new Uint8Array(4))
      expect(await small).toBe(4)
      expect(server.oversized).toBe(1)
      expect(server.handed).toBe(1)
    } finally {
      await Promise.all([server.close(), sender.close()])
    }
  })

  it('drops and counts what arrives while the main thread is too far behind, and only that', async () => {
    const server = await ThreadedUdpEndpoint.bind({ threads: 1, maxBytesInFlight: 1 })
    // The sender is another thread, so it keeps sending while this one is blocked.
    const sender = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
       const s = require('node:dgram').createSocket('udp4')
       let n = 0
       const tick = () => {
         s.send(new Uint8Array([n & 255]), workerData.port, '127.0.0.1')
         if (++n < 100) setTimeout(tick, 2)
         else setTimeout(() => { s.close(); parentPort.postMessage('done') }, 50)
       }
       parentPort.once('message', tick)`,
      { eval: true, workerData: { port: Number(server.address.split(':')[1]) } },
    )
    try {
      let handed = 0
      server.onFrame(() => {
        handed++
        if (handed === 1) {
          // Busy until all 100 reached the socket (a live shared counter): the thread's
          // batch stays unread meanwhile, so it must drop the rest.
          const until = performance.now() + 10_000
          while (server.received < 100 && performance.now() < until) {}
        }
      })
      const done = new Promise((resolve) => sender.once('message', resolve))
      sender.postMessage('go')
      await done
      const deadline = performance.now() + 5000
      while (server.handed + server.overflow < 100 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10))
      }
      expect(server.received).toBe(100)
      expect(server.overflow).toBeGreaterThan(0)
      expect(server.handed + server.overflow).toBe(100)
    } finally {
      await sender.terminate()
      await server.close()
    }
  })

  it('refuses a thread count below 1', async () => {
    await expect(ThreadedUdpEndpoint.bind({ threads: 0 })).rejects.toThrow(InvalidParametersError)
  })
})
