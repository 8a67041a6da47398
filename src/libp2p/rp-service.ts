import type { PeerId, Startable } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { PeerKey, Topic } from '../core/artifact.ts'
import type { Dissemination, PublishResult } from '../core/dissemination.ts'
import type { Listener } from '../core/emitter.ts'
import { InvalidParametersError } from '../core/errors.ts'
import type { DisseminationStats } from '../core/stats.ts'
import type { Validator } from '../core/validation.ts'
import type { RpEvents, RpPublishOptions } from '../rp/events.ts'
import { type MemberOptions, RpMember } from '../rp/member.ts'
import {
  ReplicationPoint,
  type ReplicationPointOptions,
  type RpView,
} from '../rp/replication-point.ts'
import { CoreService, type CoreServiceComponents } from './core-service.ts'

/** Protocol id of the replication-point strategy (wire version 1, see `src/rp/rp.proto`). */
export const RP_PROTOCOL = '/consensus-multicast/rp/1.0.0'

/** What every role shares. */
interface RpServiceCommon {
  /** How often missing connections to the listed peers are dialled again, in ms (default 1000). */
  redialIntervalMs?: number
}

/** A member: registers with the first reachable RP of `rps` and fails over down the list. */
export interface RpMemberServiceInit extends RpServiceCommon, Omit<MemberOptions, 'rps'> {
  /** The role. */
  role: 'member'
  /** Its RPs in order of preference, as multiaddrs ending in `/p2p/<peer id>`. */
  rps: ReadonlyArray<string | Multiaddr>
}

/** A replication point: serves members and joins the backbone of `backbone`. */
export interface RpServiceInit extends RpServiceCommon, Omit<ReplicationPointOptions, 'backbone'> {
  /** The role. */
  role: 'rp'
  /**
   * Every RP of the backbone, as multiaddrs ending in `/p2p/<peer id>` (this node may be
   * listed too). RPs dial one another; only these peers are trusted with backbone frames.
   */
  backbone: ReadonlyArray<string | Multiaddr>
}

/** Options of {@link replicationPoints}. */
export type ReplicationPointsInit = RpMemberServiceInit | RpServiceInit

/** A peer to keep connected to: its key and address. */
interface Target {
  key: PeerKey
  addr: Multiaddr
}

function targetsOf(addrs: ReadonlyArray<string | Multiaddr>): Target[] {
  return addrs.map((a) => {
    const addr = typeof a === 'string' ? multiaddr(a) : a
    const key = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
    if (key === undefined) {
      throw new InvalidParametersError(`RP address ${addr.toString()} has no /p2p/<peer id>`)
    }
    return { key, addr }
  })
}

/**
 * The replication-point strategy as a libp2p 3 service. It hosts the sans-IO member or RP
 * core on the generic {@link CoreService} driver and keeps the connections the role needs:
 * a member to every RP of its list (so a failover needs no dial), an RP to the other RPs.
 */
export class RpService implements Startable, Dissemination<RpEvents> {
  /** @inheritdoc */
  readonly strategy = 'rp' as const
  /** The role of this node. */
  readonly role: 'member' | 'rp'
  /** The driver hosting the core. */
  readonly driver: CoreService<RpMember | ReplicationPoint>
  private readonly components: CoreServiceComponents
  private readonly targets: Target[]
  private readonly redialMs: number
  private redialTimer: ReturnType<typeof setInterval> | undefined
  private readonly dialing = new Set<PeerKey>()

  constructor(components: CoreServiceComponents, init: ReplicationPointsInit) {
    this.components = components
    this.role = init.role
    this.redialMs = init.redialIntervalMs ?? 1000
    const self = components.peerId.toString()
    // Room for a payload and its header; on the backbone, for hellos full of link states too.
    const maxFrameBytes =
      (init.maxMessageBytes ?? 1 << 20) + (init.role === 'rp' ? 4 << 20 : 64 << 10)
    const options = { protocols: [RP_PROTOCOL], name: `rp:${init.role}`, maxFrameBytes }
    if (init.role === 'member') {
      const { role: _r, rps, redialIntervalMs: _i, ...rest } = init
      const targets = targetsOf(rps)
      this.targets = targets
      this.driver = new CoreService(
        components,
        options,
        (env) => new RpMember(env, { ...rest, rps: targets.map((t) => t.key) }),
      )
    } else {
      const { role: _r, backbone, redialIntervalMs: _i, ...rest } = init
      const all = targetsOf(backbone)
      // One connection per RP pair: the smaller key dials (the other accepts).
      this.targets = all.filter((t) => t.key !== self && self < t.key)
      this.driver = new CoreService(
        components,
        options,
        (env) => new ReplicationPoint(env, { ...rest, backbone: all.map((t) => t.key) }),
      )
    }
  }

  /** The hosted core: an {@link RpMember} or a {@link ReplicationPoint}. */
  get core(): RpMember | ReplicationPoint {
    return this.driver.core
  }

  /** This node's peer id. */
  get peerId(): PeerId {
    return this.components.peerId
  }

  /** The RP's view (membership, neighbours, tree); undefined on a member. */
  view(): RpView | undefined {
    return this.core instanceof ReplicationPoint ? this.core.view() : undefined
  }

  async start(): Promise<void> {
    await this.driver.start()
    this.redial()
    this.redialTimer = setInterval(() => this.redial(), this.redialMs)
  }

  async stop(): Promise<void> {
    if (this.redialTimer !== undefined) clearInterval(this.redialTimer)
    this.redialTimer = undefined
    await this.driver.stop()
  }

  subscribe(topic: Topic): void {
    this.core.subscribe(topic)
  }

  unsubscribe(topic: Topic): void {
    this.core.unsubscribe(topic)
  }

  getTopics(): Topic[] {
    return this.core.getTopics()
  }

  publish(topic: Topic, data: Uint8Array, options?: RpPublishOptions): Promise<PublishResult> {
    return this.core.publish(topic, data, options)
  }

  setValidator(topic: Topic, validator: Validator | undefined): void {
    this.core.setValidator(topic, validator)
  }

  on<K extends keyof RpEvents>(type: K, listener: Listener<RpEvents[K]>): () => void {
    return this.core.on(type, listener)
  }

  off<K extends keyof RpEvents>(type: K, listener: Listener<RpEvents[K]>): void {
    this.core.off(type, listener)
  }

  stats(): DisseminationStats {
    return this.core.stats()
  }

  /** Dials every listed peer without an open connection (an RP that restarted comes back). */
  private redial(): void {
    const { connectionManager } = this.components
    for (const t of this.targets) {
      if (this.dialing.has(t.key)) continue
      const open = connectionManager
        .getConnections()
        .some((c) => c.remotePeer.toString() === t.key && c.status === 'open')
      if (open) continue
      this.dialing.add(t.key)
      connectionManager
        .openConnection(t.addr)
        .catch(() => {
          // Unreachable for now: the next round tries again.
        })
        .finally(() => this.dialing.delete(t.key))
    }
  }
}

/**
 * The replication-point strategy as a libp2p 3 service:
 * `createLibp2p({ services: { dissemination: replicationPoints({ role: 'member', rps }) } })`.
 */
export function replicationPoints(
  init: ReplicationPointsInit,
): (components: CoreServiceComponents) => RpService {
  return (components) => new RpService(components, init)
}
