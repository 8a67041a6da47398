/**
 * Child process: one {@link Replayer} on its own UDP socket, owned by a worker thread so
 * that a burst of inclusion proofs is taken off the kernel's queue while the replayer
 * works (a driver: it loads the cached load, paces the replayer and reports to the
 * coordinator).
 */
import { ThreadedUdpEndpoint } from '../../src/broker/threaded-udp-endpoint.ts'
import { CpuMeter, epochNow, type ToReplay, toParent } from './ipc.ts'
import { readLoad } from './load-cache.ts'
import { Replayer } from './replayer.ts'

let replayer: Replayer | undefined
let udp: ThreadedUdpEndpoint | undefined
let rate = 1
const meter = new CpuMeter()

process.on('message', (m: ToReplay) => {
  if (m.type === 'init') void init(m)
  else if (m.type === 'start') start(m.at)
  else if (m.type === 'stop') {
    replayer?.stop()
    toParent({ type: 'stopped' })
  } else if (m.type === 'report' && replayer !== undefined && udp !== undefined) {
    const report = replayer.report()
    const offset = performance.timeOrigin
    toParent({
      type: 'report',
      report: {
        ...report,
        sendErrors: udp.sendErrors,
        cpuMs: meter.cpuMs(),
        firstSendAt: report.firstSendAt + offset,
        lastSendAt: report.lastSendAt + offset,
      },
    })
  }
})
process.on('disconnect', () => process.exit(0))

async function init(m: Extract<ToReplay, { type: 'init' }>): Promise<void> {
  const load = readLoad(m.context.spec, m.cacheDir)
  rate = m.ratePerSecond
  udp = await ThreadedUdpEndpoint.bind({
    threads: 1,
    socketsPerThread: 1,
    recvBufferSize: 8 * 1024 * 1024,
    sendBufferSize: 4 * 1024 * 1024,
  })
  const r = new Replayer(udp.env(), {
    load,
    part: m.part,
    parts: m.parts,
    broker: m.broker,
    otherBrokers: m.otherBrokers,
    serverKeys: m.context.serverKeys,
    ratePerSecond: m.ratePerSecond,
    retryMs: m.retryMs,
    onDone: () => toParent({ type: 'done' }),
  })
  udp.onFrame((peer, frame) => r.receive(peer, frame))
  replayer = r
  toParent({ type: 'ready' })
}

function start(at: number): void {
  const r = replayer
  if (r === undefined) return
  setTimeout(
    () => {
      meter.mark()
      r.start()
      // Millisecond pacing while first transmissions are due (a timer, not a busy loop: the
      // replayers share the machine with what they measure), then a slow tick.
      const began = performance.now()
      const sendingMs = (r.clients / rate) * 1000
      const pace = (): void => {
        r.tick()
        if (performance.now() - began <= sendingMs + 50) setTimeout(pace, 1)
        else setInterval(() => r.tick(), 50)
      }
      pace()
    },
    Math.max(0, at - epochNow()),
  )
}
