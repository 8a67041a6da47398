/**
 * Chop Chop on one machine: 512 clients (each with its own UDP socket), one broker (UDP in,
 * signature checks in a worker thread) and 4 witness servers (TCP links, a single
 * sequencer as the orderer). Every client sends 4 messages; the script prints throughput,
 * latency and the bytes a server receives per message.
 *
 *   node examples/broker-cluster.ts [clients] [messages]
 */
import { runBrokerDemo } from '../src/broker/demo-run.ts'

const clients = Number(process.argv[2] ?? 512)
const messages = Number(process.argv[3] ?? 4)

console.log(`starting ${clients} clients, a broker and 4 servers on 127.0.0.1...`)
const r = await runBrokerDemo({ clients, messages })
console.log(`
messages            ${r.submitted} submitted, ${r.delivered} delivered at every server (${r.lost} lost, ${r.duplicates} duplicates)
throughput          ${Math.round(r.throughput)} messages/s over ${r.seconds.toFixed(2)} s
latency             p50 ${r.latencyMs.p50.toFixed(0)} ms, p90 ${r.latencyMs.p90.toFixed(0)} ms, p99 ${r.latencyMs.p99.toFixed(0)} ms (sent → delivery certificate)
batches             ${r.batches} distilled, ${r.stragglers} stragglers, ${r.retransmissions} retransmissions
bytes per message   ${r.distilledBytesPerMessage.toFixed(1)} B distilled vs ${r.undistilledBytesPerMessage} B undistilled (broker → each server)
`)
