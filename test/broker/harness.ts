/**
 * A broker played by hand, for tests of what servers and clients do with a Byzantine
 * broker. It speaks the real protocol over real TCP links, with real signatures.
 */
import type { BrokerEvents } from '../../src/broker/broker.ts'
import type { HeightCertificate, Shard } from '../../src/broker/certificate.ts'
import { ClientNode } from '../../src/broker/client-node.ts'
import { batchDigest, type DistilledBatch } from '../../src/broker/distilled-batch.ts'
import { batchLeaves } from '../../src/broker/leaf.ts'
import type { LocalCluster } from '../../src/broker/local-cluster.ts'
import { batchRootInput, submissionInput } from '../../src/broker/signing.ts'
import { TcpLink } from '../../src/broker/tcp-link.ts'
import {
  decodeShardFrame,
  encodeBrokerHello,
  encodeWitnessRequest,
  type ShardFrame,
} from '../../src/broker/wire.ts'
import { blsAggregateShares } from '../../src/crypto/bls.ts'
import { merkleRoot } from '../../src/crypto/merkle.ts'
import { waitFor } from '../support/wait.ts'

/** One entry a test puts in a hand-made batch. */
export interface HandEntry {
  id: number
  payload: Uint8Array
  /** The client's own sequence number (used for stragglers). */
  sequence: number
  /** Make it a straggler (its ed25519 signature travels in the batch). */
  straggler?: boolean
}

/** Resolves with the first ban of a source starting with `source`; rejects after `ms`. */
export function banOf(
  c: LocalCluster,
  source: string,
  ms = 20_000,
): Promise<BrokerEvents['banned']> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`${source} not banned in ${ms} ms`))
    }, ms)
    const off = c.broker!.core.on('banned', (e) => {
      if (!e.source.startsWith(source)) return
      clearTimeout(timer)
      off()
      resolve(e)
    })
  })
}

/**
 * Replaces the clients of `cluster` by new ones (same ids and keys) that send to `broker`
 * (a relay in front of the real broker); each new client's close goes to `closers`.
 */
export async function clientsVia(
  cluster: LocalCluster,
  broker: string,
  retry: { retryMs: number; maxRetryMs: number; failoverAfter?: number },
  closers: (() => Promise<unknown>)[],
  otherBrokers: string[] = [],
): Promise<ClientNode[]> {
  return Promise.all(
    cluster.clientKeys.map(async (k, id) => {
      await cluster.clients[id].close()
      const node = await ClientNode.start({
        id,
        ...k,
        broker,
        otherBrokers,
        serverKeys: cluster.serverKeys,
        ...retry,
      })
      closers.push(() => node.close())
      return node
    }),
  )
}

function refusals(cluster: LocalCluster, i: number): number {
  return Object.values(cluster.servers[i].core.stats().invalid).reduce((a, b) => a + b, 0)
}

export class HandBroker {
  readonly shards: ShardFrame[]
  private readonly links: TcpLink[]
  private readonly cluster: LocalCluster

  private constructor(cluster: LocalCluster, links: TcpLink[], shards: ShardFrame[]) {
    this.cluster = cluster
    this.links = links
    this.shards = shards
  }

  static async connect(cluster: LocalCluster): Promise<HandBroker> {
    const shards: ShardFrame[] = []
    const links = await Promise.all(
      cluster.servers.map((s, i) =>
        TcpLink.connect('127.0.0.1', s.port, `server/${i}`, {
          frame: (_peer, f) => shards.push(decodeShardFrame(f)),
        }),
      ),
    )
    // Like a real broker, it says hello: servers then send it every delivery shard.
    for (const l of links) l.send(encodeBrokerHello())
    return new HandBroker(cluster, links, shards)
  }

  /** A batch built the way an honest broker would, with real client signatures. */
  build(
    entries: HandEntry[],
    opts: { raise?: number; batchNumber?: number; height?: HeightCertificate } = {},
  ): {
    batch: DistilledBatch
    root: Uint8Array
  } {
    const sorted = [...entries].sort((a, b) => a.id - b.id)
    const ids = Uint32Array.from(sorted, (e) => e.id)
    const payloads = sorted.map((e) => e.payload)
    const raise = opts.raise ?? Math.max(...sorted.map((e) => e.sequence))
    const root = merkleRoot(batchLeaves(raise, ids, payloads, 8))
    const keys = this.cluster.clientKeys
    const signers = sorted.filter((e) => !e.straggler)
    const agg = blsAggregateShares(
      batchRootInput(root),
      signers.map((e) => ({
        publicKey: this.cluster.directory.blsKey(e.id),
        signature: keys[e.id].bls.sign(batchRootInput(root)),
      })),
    )
    const stragglers = sorted.flatMap((e, index) =>
      e.straggler
        ? [
            {
              index,
              sequence: e.sequence,
              signature: keys[e.id].ed25519.sign(submissionInput(e.id, e.sequence, e.payload)),
            },
          ]
        : [],
    )
    return {
      root,
      batch: {
        batchNumber: opts.batchNumber ?? 1,
        entriesPerLeaf: 8,
        raise,
        height: opts.height ?? { slot: 0, shards: [] },
        ids,
        payloads,
        aggregate: agg.aggregate,
        stragglers,
      },
    }
  }

  /**
   * Sends a batch frame to every server (or those in `only`) and asks them to witness; waits
   * until each either signed or refused (counted a fault), and returns the shards got.
   */
  async witness(
    frame: Uint8Array,
    only?: number[],
  ): Promise<{ digest: Uint8Array; witnesses: Shard[] }> {
    const digest = batchDigest(frame)
    const to = only ?? this.links.map((_, i) => i)
    const before = to.map((i) => refusals(this.cluster, i))
    for (const i of to) this.links[i].send(frame)
    for (const i of to) this.links[i].send(encodeWitnessRequest(digest))
    const shards = () =>
      this.shards.filter((s) => s.digest !== undefined && Buffer.compare(s.digest, digest) === 0)
    await waitFor(
      () =>
        before.every(
          (b, k) =>
            refusals(this.cluster, to[k]) > b || shards().some((s) => s.shard.server === to[k]),
        ),
      { what: 'every server to witness or refuse the batch' },
    )
    return { digest, witnesses: shards().map((s) => s.shard) }
  }

  /** Waits until every server has processed slot `slot`. */
  async ordered(slot: number): Promise<void> {
    // A slot taken by a repeated batch delivers nothing and emits nothing: polled.
    await waitFor(() => this.cluster.servers.every((s) => s.core.height >= slot), {
      what: `every server past slot ${slot}`,
    })
  }

  /** Delivery shards received for a slot. */
  deliveryShards(slot: number): Shard[] {
    return this.shards.filter((s) => s.slot === slot).map((s) => s.shard)
  }

  /** Sends raw bytes on the link to server `i`. */
  sendRaw(i: number, frame: Uint8Array): void {
    this.links[i].send(frame)
  }

  close(): void {
    for (const l of this.links) l.close()
  }
}
