import type { DisseminationStats } from '../common/stats.ts'
import { GossipRouter } from '../gossip/router.ts'
import { RpMember } from '../rp/member.ts'
import type { CliNode } from './node-libp2p.ts'

/** The counters the status line turns into rates, read at one instant. */
export interface StatusSample {
  /** When, in ms. */
  at: number
  /** Messages delivered from the network. */
  delivered: number
  /** Messages this node published. */
  published: number
  /** Copies received of messages already seen. */
  duplicates: number
}

/** The counters of `stats` at time `at`. */
export function sample(stats: DisseminationStats, at: number): StatusSample {
  const { delivered, published, duplicates } = stats.total
  return { at, delivered, published, duplicates }
}

const shortId = (peer: string) => (peer.length > 12 ? `…${peer.slice(-8)}` : peer)

/** What the strategy knows about its neighbourhood: mesh for gossip, membership for RP. */
function strategyFields(node: CliNode, topic: string): string[] {
  const service = node.services.dissemination
  const core = service.core
  if (core instanceof GossipRouter) {
    return [
      `mesh=${core.getMeshPeers(topic).length}`,
      `topic-peers=${core.getTopicPeers(topic).length}`,
    ]
  }
  if (core instanceof RpMember) {
    return [
      `rp=${core.rp === undefined ? 'none' : shortId(core.rp)}`,
      `registered=${core.isRegistered ? 'yes' : 'no'}`,
      // With --lan-multicast: whether the RP's multicast reaches it (probe result).
      ...(core.multicastStats() === undefined ? [] : [`lan=${core.multicastState(topic)}`]),
    ]
  }
  const view = 'view' in service ? service.view() : undefined
  if (view !== undefined) {
    return [
      `members=${view.members}`,
      `topic-members=${view.totalCounts[topic] ?? 0}`,
      `rps=${view.reachable.length}`,
    ]
  }
  return [`strategy-peers=${service.getPeers().length}`]
}

const perSecond = (now: number, before: number, ms: number) =>
  ms > 0 ? (((now - before) * 1000) / ms).toFixed(1) : '0.0'

/**
 * One status line: connected peers, the strategy's view (mesh, registration or members),
 * messages per second in (delivered) and out (published) since `prev`, and duplicates.
 */
export function formatStatus(
  node: CliNode,
  topic: string,
  prev: StatusSample,
  now: StatusSample,
  publishErrors: number,
): string {
  const ms = now.at - prev.at
  return [
    'status',
    `peers=${node.getPeers().length}`,
    ...strategyFields(node, topic),
    `in=${perSecond(now.delivered, prev.delivered, ms)}/s`,
    `out=${perSecond(now.published, prev.published, ms)}/s`,
    `dup=${now.duplicates}`,
    `dup-rate=${perSecond(now.duplicates, prev.duplicates, ms)}/s`,
    `delivered=${now.delivered}`,
    `published=${now.published}`,
    `publish-errors=${publishErrors}`,
  ].join(' ')
}

/**
 * Writes lines to a stream. On a terminal the status line stays at the bottom and is
 * redrawn in place; elsewhere (a pipe, a file) every status is a line of its own, so
 * programs can read them.
 */
export class StatusLine {
  private current = ''
  private readonly out: NodeJS.WriteStream

  constructor(out: NodeJS.WriteStream) {
    this.out = out
  }

  /** Prints an event line (above the status line on a terminal). */
  print(line: string): void {
    if (this.out.isTTY && this.current !== '') {
      this.out.write(`\r\x1b[2K${line}\n${this.current}`)
    } else {
      this.out.write(`${line}\n`)
    }
  }

  /** Shows a new status. */
  show(status: string): void {
    if (this.out.isTTY) {
      this.current = status
      this.out.write(`\r\x1b[2K${status}`)
    } else {
      this.out.write(`${status}\n`)
    }
  }

  /** Ends the status line, so what follows starts on a fresh line. */
  close(): void {
    if (this.out.isTTY && this.current !== '') this.out.write('\n')
    this.current = ''
  }
}
