/**
 * Child process: the broker ({@link BrokerNode}: UDP to clients, TCP to the servers, worker
 * threads for submission signatures), proposing witnessed batches to the coordinator.
 */
import { BrokerNode } from '../../src/broker/broker-node.ts'
import { CpuMeter, epochNow, IpcOrderer, type ToBroker, toParent } from './ipc.ts'
import { loadDirectory } from './load-cache.ts'

let node: BrokerNode | undefined
const meter = new CpuMeter()

process.on('message', (m: ToBroker) => {
  if (m.type === 'init') void init(m)
  else if (m.type === 'mark') meter.mark()
  else if (m.type === 'report' && node !== undefined) {
    toParent({
      type: 'report',
      report: {
        at: epochNow(),
        received: node.udp.received - ('overflow' in node.udp ? node.udp.overflow : 0),
        sent: node.udp.sent,
        counts: {
          ...node.core.counts(),
          udpOverflow: 'overflow' in node.udp ? node.udp.overflow : 0,
        },
        cpuMs: meter.cpuMs(),
        mainCpuMs: meter.mainCpuMs(),
      },
    })
  }
})
process.on('disconnect', () => process.exit(0))

async function init(m: Extract<ToBroker, { type: 'init' }>): Promise<void> {
  const { spec, registrations, limits, serverKeys } = m.context
  node = await BrokerNode.start({
    directory: loadDirectory(spec, registrations),
    serverAddresses: m.serverPorts.map((port) => ({ host: '127.0.0.1', port })),
    serverKeys,
    orderer: new IpcOrderer(),
    limits,
    flushTimeoutMs: m.settings.flushTimeoutMs,
    shareTimeoutMs: m.settings.shareTimeoutMs,
    maxInFlightBatches: m.settings.maxInFlightBatches,
    authThreads: m.settings.authThreads,
    deferAuthentication: m.settings.deferAuthentication,
    udpThreads: m.settings.udpThreads,
    deferBase: m.settings.deferBase,
    udp: { recvBufferSize: m.settings.recvBufferBytes, sendBufferSize: 4 * 1024 * 1024 },
  })
  toParent({ type: 'ready', address: node.address, recvBufferBytes: node.udp.recvBufferSize })
}
