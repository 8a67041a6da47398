import type { Histogram, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerKey, Topic } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import type { PublishResult } from '../common/dissemination.ts'
import type { Env } from '../common/env.ts'
import { messageIdKey } from '../common/message-id.ts'
import { Ed25519PeerSignatures, type PeerSignatures } from '../crypto/peer-signatures.ts'
import type { RpEvents, RpPublishOptions } from '../rp/events.ts'
import { type MemberOptions, RpMember } from '../rp/member.ts'
import {
  ReplicationPoint,
  type ReplicationPointOptions,
  type RpView,
} from '../rp/replication-point.ts'
import {
  DisseminationService,
  type DisseminationServiceComponents,
  type DisseminationServiceOptions,
  peerAddresses,
} from './dissemination-service.ts'
import { UdpLan, type UdpLanOptions } from './udp-lan.ts'

/** Protocol id of the replication-point strategy (wire version 1, see `src/rp/rp.proto`). */
export const RP_PROTOCOL = '/consensus-multicast/rp/1.0.0'

/** What every role shares. */
interface RpServiceCommon {
  /** How often missing connections to the listed peers are dialled again, in ms (default 1000). */
  redialIntervalMs?: number
  /**
   * RP multicast on a LAN interface (doc/rp-multicast.md): an RP sends each message once to
   * the topic's (S = this address, G) channel; a member joins the channels its RP announces
   * on this interface and probes. Absent: unicast only.
   */
  lanMulticast?: UdpLanOptions
}

/** A member: registers with the first reachable RP of `rps` and fails over down the list. */
export interface RpMemberServiceInit
  extends RpServiceCommon,
    Omit<MemberOptions, 'rps' | 'lan' | 'signatures'> {
  /** The role. */
  role: 'member'
  /** Its RPs in order of preference, as multiaddrs ending in `/p2p/<peer id>`. */
  rps: ReadonlyArray<string | Multiaddr>
}

/** A replication point: serves members and joins the backbone of `backbone`. */
export interface RpServiceInit
  extends RpServiceCommon,
    Omit<ReplicationPointOptions, 'backbone' | 'lan' | 'signatures'> {
  /** The role. */
  role: 'rp'
  /**
   * Every RP of the backbone, as multiaddrs ending in `/p2p/<peer id>` (this node may be
   * listed too). RPs dial one another; only these peers are trusted with backbone frames.
   */
  backbone: ReadonlyArray<string | Multiaddr>
}

/** What libp2p gives the RP service: the generic components plus the node's key. */
export interface RpServiceComponents extends DisseminationServiceComponents {
  /**
   * The node's private key (Ed25519): it signs what this node publishes, and other
   * publishers' signatures are checked against their peer ids.
   */
  privateKey: PrivateKey
}

/** Options of {@link replicationPoints}. */
export type ReplicationPointsInit = RpMemberServiceInit | RpServiceInit

/** Publishes awaiting their quorum whose start time is kept for the latency histogram. */
export const MAX_TIMED_PUBLISHES = 1024

/** Buckets of the publish-to-quorum latency, in seconds: 1 ms to 10 s. */
const QUORUM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

const addressesOf = (addrs: ReadonlyArray<string | Multiaddr>) => peerAddresses(addrs, 'RP address')

function driverOptions(self: PeerKey, init: ReplicationPointsInit): DisseminationServiceOptions {
  // Room for a payload and its header; on the backbone, for hellos full of link states too.
  const maxFrameBytes =
    (init.maxMessageBytes ?? 1 << 20) + (init.role === 'rp' ? 4 << 20 : 64 << 10)
  const peers =
    init.role === 'member'
      ? addressesOf(init.rps)
      : // One connection per RP pair: the smaller key dials (the other accepts).
        addressesOf(init.backbone).filter((t) => t.key !== self && self < t.key)
  return {
    protocols: [RP_PROTOCOL],
    name: `rp:${init.role}`,
    tag: '@consensus-multicast/rp',
    maxFrameBytes,
    keepConnected: peers.map((t) => t.addr),
    redialIntervalMs: init.redialIntervalMs,
  }
}

function createCore(
  init: ReplicationPointsInit,
  env: Env,
  lan: UdpLan | undefined,
  signatures: PeerSignatures,
): RpMember | ReplicationPoint {
  if (init.role === 'member') {
    const { role: _r, rps, redialIntervalMs: _i, lanMulticast: _l, ...rest } = init
    const member = new RpMember(env, {
      ...rest,
      lan,
      signatures,
      rps: addressesOf(rps).map((t) => t.key),
    })
    lan?.onDatagram((source, bytes) => member.datagramReceived(source, bytes))
    return member
  }
  const { role: _r, backbone, redialIntervalMs: _i, lanMulticast: _l, ...rest } = init
  return new ReplicationPoint(env, {
    ...rest,
    lan,
    signatures,
    backbone: addressesOf(backbone).map((t) => t.key),
  })
}

/**
 * The replication-point strategy as a libp2p 3 service: the sans-IO member or RP core on
 * the generic {@link DisseminationService} driver, which keeps the connections the role needs (a
 * member to every RP of its list, so a failover needs no dial; an RP to the other RPs).
 */
export class RpService extends DisseminationService<
  RpMember | ReplicationPoint,
  RpEvents,
  RpPublishOptions
> {
  /** The role of this node. */
  readonly role: 'member' | 'rp'
  /** Start times (`performance.now()`) of recent publishes, by message id key (bounded). */
  private readonly publishedAt = new Map<string, number>()
  private readonly quorumLatency: Histogram | undefined
  /** The LAN sockets, with the `lanMulticast` option. */
  readonly lan: UdpLan | undefined

  constructor(components: RpServiceComponents, init: ReplicationPointsInit) {
    // Before any socket opens: a node whose identity is not Ed25519 fails here.
    const signatures = new Ed25519PeerSignatures(components.privateKey)
    const lan = init.lanMulticast === undefined ? undefined : new UdpLan(init.lanMulticast)
    super(components, driverOptions(components.peerId.toString(), init), (env) =>
      createCore(init, env, lan, signatures),
    )
    this.lan = lan
    this.role = init.role
    this.quorumLatency = this.metrics?.histogram(
      'quorum_seconds',
      'time from publish to the delivery quorum',
      QUORUM_BUCKETS,
    )
    if (this.quorumLatency === undefined) return
    this.core.on('quorum', (q) => {
      const key = messageIdKey(q.id)
      const start = this.publishedAt.get(key)
      if (start === undefined) return
      this.publishedAt.delete(key)
      this.quorumLatency?.observe((performance.now() - start) / 1000)
    })
  }

  /** Opens the RP's multicast socket (if any), then starts the core. */
  override async start(): Promise<void> {
    if (this.role === 'rp') await this.lan?.openSender()
    await super.start()
  }

  /** Stops the core, then closes the LAN sockets. */
  override async stop(): Promise<void> {
    await super.stop()
    await this.lan?.close()
  }

  /** Publishes as every strategy does; with metrics on, times it until its quorum. */
  override async publish(
    topic: Topic,
    data: Uint8Array,
    options?: RpPublishOptions,
  ): Promise<PublishResult> {
    if (this.quorumLatency === undefined) return super.publish(topic, data, options)
    const start = performance.now()
    const result = await super.publish(topic, data, options)
    setNewest(this.publishedAt, messageIdKey(result.id), start, MAX_TIMED_PUBLISHES)
    return result
  }

  /** The RP's view (membership, neighbours, tree); undefined on a member. */
  view(): RpView | undefined {
    return this.core instanceof ReplicationPoint ? this.core.view() : undefined
  }
}

/**
 * The replication-point strategy as a libp2p 3 service:
 * `createLibp2p({ services: { dissemination: replicationPoints({ role: 'member', rps }) } })`.
 */
export function replicationPoints(
  init: ReplicationPointsInit,
): (components: RpServiceComponents) => RpService {
  return (components) => new RpService(components, init)
}
