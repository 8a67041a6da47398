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
import { waitFor } from '../support/wait.ts'

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
    const server = await ThreadedUdpEndpoint.bind({ threads: 1, maxBytesInFlight: 1, maxQueued: 8 })
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

  it('holds a budget per source and hands sources on in turn: a flood loses its excess, an honest source nothing', async () => {
    const server = await ThreadedUdpEndpoint.bind({
      threads: 1,
      socketsPerThread: 4,
      maxQueued: 1024,
      maxDatagramsInFlight: 16,
      // Room in the kernel for the whole flood, so only the thread's budgets decide.
      recvBufferSize: 4 * 1024 * 1024,
    })
    // Another thread floods from 127.66.0.9, then 16 honest flows from 127.0.0.1 send 4
    // datagrams each, all while this thread is blocked.
    const done = new Int32Array(new SharedArrayBuffer(4))
    const sender = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
       const dgram = require('node:dgram')
       const bind = (host) => new Promise((r) => { const s = dgram.createSocket('udp4'); s.bind(0, host, () => r(s)) })
       parentPort.once('message', async () => {
         const flood = await bind('127.66.0.9')
         const honest = await Promise.all(Array.from({ length: 16 }, () => bind('127.0.0.1')))
         const sent = (s, bytes) => new Promise((r) => s.send(bytes, workerData.port, '127.0.0.1', r))
         const floods = []
         for (let i = 0; i < 3000; i++) floods.push(sent(flood, new Uint8Array([1, i & 255])))
         await Promise.all(floods)
         await Promise.all(honest.flatMap((s) => [0, 1, 2, 3].map(() => sent(s, new Uint8Array([2])))))
         setTimeout(() => { Atomics.store(workerData.done, 0, 1); for (const s of [flood, ...honest]) s.close() }, 50)
       })`,
      { eval: true, workerData: { port: Number(server.address.split(':')[1]), done } },
    )
    const drops = new Map<string, number>()
    server.onDrops((source, n, why) => {
      if (why === 'overflow') drops.set(source, (drops.get(source) ?? 0) + n)
    })
    try {
      let honest = 0
      let flood = 0
      let floodBeforeLastHonest = 0
      let blocked = false
      server.onFrame((_, frame) => {
        if (frame[0] === 1) flood++
        if (frame[0] === 2 && ++honest === 64) floodBeforeLastHonest = flood
        if (blocked) return
        blocked = true
        // Busy until the thread took all 3,065 datagrams off its sockets (a live shared
        // counter): it queues them meanwhile.
        const until = performance.now() + 10_000
        while (server.received < 3065 && performance.now() < until) {}
      })
      sender.postMessage('go')
      // The first datagram (sent from here) blocks this thread while the others arrive.
      const kick = await UdpEndpoint.bind()
      kick.send(server.address, new Uint8Array([0]))
      const all = () =>
        server.handed + server.overflow === server.received - server.oversized &&
        server.countsOf('127.66.0.9').overBudget === server.overflow &&
        server.countsOf('127.66.0.9').forwarded + server.countsOf('127.0.0.1').forwarded ===
          server.forwarded
      await waitFor(() => Atomics.load(done, 0) === 1 && all(), {
        what: 'every datagram handed on or counted',
      })
      await kick.close()
      // Every honest datagram arrived; only the flood lost any, counted against it.
      expect(honest).toBe(64)
      expect(server.overflow).toBeGreaterThan(0)
      expect([...drops.keys()]).toEqual(['127.66.0.9'])
      expect(drops.get('127.66.0.9')).toBe(server.overflow)
      // It held at most half the queue (its address's budget): the rest was its excess.
      expect(flood).toBeLessThanOrEqual(512 + 16 + 1)
      expect(server.countsOf('127.66.0.9').forwarded).toBe(flood)
      expect(server.countsOf('127.0.0.1').forwarded).toBe(65)
      // The honest datagrams did not wait behind the flood's backlog (512 held, queued
      // before them): the prefixes were served in turn, 16 datagrams (the room in flight)
      // at a time, so about 16 + 4 × 16 of the flood's went first (FIFO: all 512).
      expect(floodBeforeLastHonest).toBeLessThan(256)
      expect(server.queued).toBe(0)
    } finally {
      await sender.terminate()
      await server.close()
    }
  })

  it('drops what a blocked address or /24 sends, on receipt, and reports it', async () => {
    const server = await ThreadedUdpEndpoint.bind({ threads: 2, socketsPerThread: 2 })
    const bad = await UdpEndpoint.bind({ host: '127.66.1.7' })
    const worse = await UdpEndpoint.bind({ host: '127.66.2.9' })
    const good = await UdpEndpoint.bind({ host: '127.0.0.2' })
    let banned = 0
    server.onDrops((_source, n, why) => {
      if (why === 'banned') banned += n
    })
    try {
      const got: string[] = []
      // Probes carry 0; the datagrams sent once the blocks are in place carry 1, 2 and 3.
      server.onFrame((peer, frame) => {
        if (frame[0] !== 0) got.push(`${peer} ${frame[0]}`)
      })
      server.block('127.66.1.7', 60_000)
      server.block('127.66.2.0/24', 60_000)
      // The blocks reach the threads as messages: probe each flow until its thread has it
      // (a flow always lands on the same socket, so the same thread).
      for (const sender of [bad, worse]) {
        const before = server.blocked
        await waitFor(
          () => {
            sender.send(server.address, new Uint8Array([0]))
            return server.blocked > before
          },
          { what: `${sender.address} blocked` },
        )
      }
      const blocked = server.blocked
      for (let i = 0; i < 10; i++) {
        bad.send(server.address, new Uint8Array([1]))
        worse.send(server.address, new Uint8Array([2]))
      }
      // (≥: a probe still on its way may be counted too)
      await waitFor(() => server.blocked >= blocked + 20, { what: 'the 20 datagrams blocked' })
      good.send(server.address, new Uint8Array([3]))
      await waitFor(() => got.length > 0, { what: 'the good datagram' })
      await waitFor(() => banned === server.blocked, { what: 'every drop reported' })
      expect(got).toEqual([`${good.address} 3`])
      expect(server.overflow).toBe(0)
    } finally {
      await Promise.all([server.close(), bad.close(), worse.close(), good.close()])
    }
  })

  it('refuses a thread count below 1', async () => {
    await expect(ThreadedUdpEndpoint.bind({ threads: 0 })).rejects.toThrow(InvalidParametersError)
  })
})
