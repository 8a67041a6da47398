import { getRandomValues } from 'node:crypto'
import type { PeerKey } from '../common/artifact.ts'

/** How often a link's RTT is sampled again once measured, in ms. */
export const PING_INTERVAL_MS = 60_000
/**
 * Samples a link's base RTT is the least of (the last ones): the hello's sample is taken while
 * a node starts and its event loop is busy, and queueing only ever adds to a round trip.
 */
export const BASE_RTT_SAMPLES = 4
/** The wait between pings until a link has its early samples, in ms. */
const EARLY_PING_MS = 500
/** A ping unanswered for this long may be replaced by a new one (the frame was lost). */
const PING_TIMEOUT_MS = 5_000
/** Weight of a new sample in the smoothed RTT (TCP's 1/8). */
const SMOOTHING = 0.125
/** The probe of a one-copy hello ASK, answered by its ACK (ping nonces never take this value). */
const HELLO = 0xffff_ffff
/**
 * Ping nonces are drawn from [2^28, 2^32 - 1): a peer cannot guess one to answer a ping before
 * it arrives, and each is a 5-byte varint on the wire (frame sizes do not depend on the draw,
 * so a simulation stays deterministic).
 */
const NONCE_MIN = 0x1000_0000
/** The draw of a nonce (one buffer, refilled). */
const NONCE_DRAW = new Uint32Array(1)

interface Probe {
  /** Smoothed RTT, ms; undefined until the first pong. */
  rttMs: number | undefined
  /** The last {@link BASE_RTT_SAMPLES} samples, ms (a ring; `samples` taken in all). */
  recent: number[]
  samples: number
  /** The nonce of the ping in flight (0: none). */
  nonce: number
  sentAt: number
}

/**
 * Round-trip times of one-copy links (one-copy source trees): the first sample is the hello
 * ASK's round trip (its ACK answers at once; every negotiated link has one, at no cost), then
 * ping/pong at each heartbeat until the early samples are in, then once a minute, on the links
 * that need it. The core times its own probes with the
 * injected clock, so the simulator measures link latency as a real node does (queueing
 * included). One probe in flight per peer, with a random nonce; an answer that does not match
 * it is ignored, so a peer cannot make up samples. The hello's ACK is a constant, which a peer
 * could send before our ASK reached it to look near: that only makes it a parent, and a
 * parent that does not deliver is passed over (SourceTrees.firstCopy).
 */
export class LinkRtt {
  private readonly probes = new Map<PeerKey, Probe>()
  /** Samples taken at the early pace (the hello's included) before pings go once a minute. */
  private readonly earlySamples: number

  /**
   * `earlySamples`: how many samples a link gets at the early pace; 1 pings only once a
   * minute after the hello (each early ping costs bytes on every mesh link).
   */
  constructor(earlySamples = BASE_RTT_SAMPLES) {
    this.earlySamples = earlySamples
  }

  /** A nonce to ping `peer` with now, or undefined when a ping is in flight or not yet due. */
  ping(peer: PeerKey, now: number): number | undefined {
    let p = this.probes.get(peer)
    if (p === undefined) {
      p = { rttMs: undefined, recent: [], samples: 0, nonce: 0, sentAt: 0 }
      this.probes.set(peer, p)
    } else {
      const interval = p.samples < this.earlySamples ? EARLY_PING_MS : PING_INTERVAL_MS
      const wait = p.nonce !== 0 ? PING_TIMEOUT_MS : interval
      if (now - p.sentAt < wait) return undefined
    }
    // Never 0 (none in flight) nor HELLO.
    p.nonce = NONCE_MIN + (getRandomValues(NONCE_DRAW)[0] % (HELLO - NONCE_MIN))
    p.sentAt = now
    return p.nonce
  }

  /** A hello ASK goes to `peer` now: timed when no sample nor probe is there yet. */
  hello(peer: PeerKey, now: number): void {
    const p = this.probes.get(peer)
    if (p !== undefined && (p.rttMs !== undefined || p.nonce !== 0)) return
    this.probes.set(peer, { rttMs: undefined, recent: [], samples: 0, nonce: HELLO, sentAt: now })
  }

  /** `peer` answered a hello ASK (ACK): a sample when it answers ours. */
  helloAcked(peer: PeerKey, now: number): void {
    this.pong(peer, HELLO, now)
  }

  /** `peer` echoed `nonce`: a sample when it answers our ping in flight; true when it did. */
  pong(peer: PeerKey, nonce: number, now: number): boolean {
    const p = this.probes.get(peer)
    if (p === undefined || p.nonce === 0 || p.nonce !== nonce) return false
    const sample = now - p.sentAt
    p.rttMs = p.rttMs === undefined ? sample : p.rttMs + SMOOTHING * (sample - p.rttMs)
    p.recent[p.samples++ % BASE_RTT_SAMPLES] = sample
    p.nonce = 0
    return true
  }

  /** The smoothed RTT to `peer`, ms; undefined until measured. */
  rttMs(peer: PeerKey): number | undefined {
    return this.probes.get(peer)?.rttMs
  }

  /**
   * One-way latency to `peer` (half its base RTT: the least of its last samples, the link's
   * own delay without the queueing some samples carried), ms; undefined until measured.
   */
  latencyMs(peer: PeerKey): number | undefined {
    const p = this.probes.get(peer)
    return p === undefined || p.recent.length === 0 ? undefined : Math.min(...p.recent) / 2
  }

  /** `peer` disconnected. */
  forget(peer: PeerKey): void {
    this.probes.delete(peer)
  }
}
