import type { DisconnectOptions, Env, TimerHandle } from '../../src/common/env.ts'
import {
  decodeRpc,
  emptyControl,
  encodeRpc,
  type Rpc,
  type RpcControl,
} from '../../src/gossip/rpc-codec.ts'
import { Prng } from '../../src/sim/prng.ts'

interface Timer {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/**
 * A hand-driven Env for one router: the test plays every peer, writing real RPC frames and
 * reading the frames the router sends (decoded with the real codec). Time moves only when
 * the test calls {@link advance}.
 */
export class ManualEnv implements Env {
  readonly self: string
  time = 1000
  sent: { peer: string; rpc: Rpc; bytes: number }[] = []
  /** Every disconnect the core asked for. */
  disconnected: ({ peer: string } & DisconnectOptions)[] = []
  private timers: Timer[] = []
  private seq = 0
  private readonly prng = new Prng(7)

  constructor(self = 'me') {
    this.self = self
  }

  now(): number {
    return this.time
  }

  send(peer: string, frame: Uint8Array): void {
    this.sent.push({ peer, rpc: decodeRpc(frame), bytes: frame.length })
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t: Timer = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false }
    this.timers.push(t)
    return {
      cancel: () => {
        t.cancelled = true
      },
    }
  }

  random(): number {
    return this.prng.next()
  }

  disconnect(peer: string, options: DisconnectOptions): void {
    this.disconnected.push({ peer, ...options })
  }

  /** Runs every timer due within `ms`, in time order, then sets the clock to the end. */
  advance(ms: number): void {
    const end = this.time + ms
    for (;;) {
      const due = this.timers
        .filter((t) => !t.cancelled && t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      due.cancelled = true
      this.time = due.at
      due.fn()
    }
    this.timers = this.timers.filter((t) => !t.cancelled)
    this.time = end
  }

  /** Returns and forgets what was sent so far. */
  take(): { peer: string; rpc: Rpc; bytes: number }[] {
    const out = this.sent
    this.sent = []
    return out
  }
}

/** Encodes an RPC from partial parts. */
export function frame(
  parts: Partial<Omit<Rpc, 'control'>> & { control?: Partial<RpcControl> },
): Uint8Array {
  return encodeRpc({
    subscriptions: parts.subscriptions ?? [],
    messages: parts.messages ?? [],
    control: parts.control === undefined ? undefined : { ...emptyControl(), ...parts.control },
    oneCopy: parts.oneCopy,
  })
}

/** A subscription frame for `topics`. */
export function subscribeFrame(...topics: string[]): Uint8Array {
  return frame({ subscriptions: topics.map((topic) => ({ subscribe: true, topic })) })
}
