/**
 * Worker thread body of {@link Flood}: sends datagrams to a target from sockets bound to
 * one loopback address, as fast as its thread can, until told to stop or `max` are sent.
 * `workerData`: `{ host, target, frames, random, sockets, max }`; frames are cycled (or,
 * with `random`, random bytes of 1–200 are sent); `sockets` source ports are used in turn,
 * all bound first. Posts `{ started }` (epoch milliseconds) as it starts sending and `{ sent }`
 * when done.
 */
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { parentPort, workerData } from 'node:worker_threads'

interface FloodData {
  host: string
  target: string
  frames: Uint8Array[]
  random: boolean
  sockets: number
  max: number
}

const data = workerData as FloodData
const colon = data.target.lastIndexOf(':')
const targetHost = data.target.slice(0, colon)
const targetPort = Number(data.target.slice(colon + 1))
let stopped = false
let sent = 0
let inFlight = 0
const sockets: Socket[] = []

parentPort!.on('message', (m: string) => {
  if (m === 'stop') stopped = true
})

async function bindAll(): Promise<void> {
  for (let i = 0; i < data.sockets; i++) {
    const s = createSocket('udp4')
    s.on('error', () => {})
    await new Promise<void>((r) => s.bind(0, data.host, () => r()))
    sockets.push(s)
  }
}

/** Random garbage: a pool reused in turn, so generating it costs less than sending. */
const pool = data.random ? Array.from({ length: 4096 }, () => randomBytes(1 + (sent++ % 200))) : []
sent = 0

function burst(): void {
  // Bounded in flight, so the kernel's send buffer (not this heap) absorbs the rate.
  for (let i = 0; i < 256 && !stopped && sent < data.max && inFlight < 4096; i++) {
    const frame = data.random ? pool[sent % pool.length] : data.frames[sent % data.frames.length]
    const s = sockets[sent % sockets.length]
    sent++
    inFlight++
    s.send(frame, targetPort, targetHost, () => inFlight--)
  }
  if (stopped || sent >= data.max) {
    const done = () => {
      for (const s of sockets) s.close()
      parentPort!.postMessage({ sent })
    }
    const drain = () => (inFlight === 0 ? done() : setImmediate(drain))
    drain()
    return
  }
  setImmediate(burst)
}

await bindAll()
parentPort!.postMessage({ started: performance.timeOrigin + performance.now() })
burst()
