/**
 * Child process: one witness server ({@link ServerNode}) following the coordinator's
 * sequencer, counting what it delivers per client id (exactly once is checked here).
 */
import { ServerNode } from '../../src/broker/server-node.ts'
import {
  CpuMeter,
  epochNow,
  IpcOrderer,
  type ServerReport,
  type ToServer,
  toParent,
} from './ipc.ts'
import { deriveServerKey, isLoadPayload, loadDirectory } from './load-cache.ts'

const orderer = new IpcOrderer()
let node: ServerNode | undefined
let counts = new Uint8Array(0)
let payloadBytes = 0
const report: ServerReport = {
  delivered: 0,
  deliveredTwice: 0,
  wrongPayload: 0,
  firstDeliveryAt: 0,
  lastDeliveryAt: 0,
  buckets: [],
  witnessed: 0,
  cpuMs: 0,
}
const meter = new CpuMeter()
const buckets = new Map<number, number>()

process.on('message', (m: ToServer) => {
  if (m.type === 'ordered') orderer.deliver(m.slot, m.reference)
  else if (m.type === 'init') void init(m)
  else if (m.type === 'mark') meter.mark()
  else if (m.type === 'report') {
    report.cpuMs = meter.cpuMs()
    report.buckets = [...buckets]
    report.witnessed = node?.core.counts().witnessed ?? 0
    toParent({ type: 'report', report })
  }
})
process.on('disconnect', () => process.exit(0))

async function init(m: Extract<ToServer, { type: 'init' }>): Promise<void> {
  const { spec, registrations, limits, serverKeys } = m.context
  counts = new Uint8Array(spec.clients)
  payloadBytes = spec.payloadBytes
  node = await ServerNode.start({
    index: m.index,
    keyPair: deriveServerKey(spec.seed, m.index),
    serverKeys,
    directory: loadDirectory(spec, registrations),
    orderer,
    limits,
  })
  node.core.on('deliver', (d) => {
    const now = epochNow()
    if (d.clientId >= counts.length) return
    if (!isLoadPayload(d.clientId, d.payload, payloadBytes)) {
      report.wrongPayload++
    }
    if (counts[d.clientId] > 0) report.deliveredTwice++
    else report.delivered++
    if (counts[d.clientId] < 255) counts[d.clientId]++
    report.firstDeliveryAt ||= now
    report.lastDeliveryAt = now
    const b = Math.floor(now / 100)
    buckets.set(b, (buckets.get(b) ?? 0) + 1)
  })
  toParent({ type: 'ready', port: node.port })
}
