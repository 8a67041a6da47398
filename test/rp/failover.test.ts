import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { RpView } from '../../src/rp/replication-point.ts'
import { clusterIdentities, rpListFor, waitUntil } from './fixtures/cluster.ts'
import type { ChildConfig, FromChild, ToChild } from './fixtures/rp-node.ts'

const TOPIC = 'blocks'
const SCRIPT = fileURLToPath(new URL('./fixtures/rp-node.ts', import.meta.url))
const MESSAGES = 60
const KILL_AFTER = 20

/** One node in its own Node 24 process, driven over IPC. */
class Child {
  readonly proc: ChildProcess
  readonly received = new Map<number, number>()
  readonly published = new Set<number>()
  readonly failures: string[] = []
  ready = false
  registered = false
  private readonly views = new Map<number, (v: RpView | null) => void>()
  private ref = 0

  constructor(config: ChildConfig) {
    this.proc = fork(SCRIPT, [JSON.stringify(config)], {
      execPath: process.execPath,
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.proc.on('message', (m: FromChild) => {
      if (m.type === 'ready') this.ready = true
      else if (m.type === 'registered') this.registered = true
      else if (m.type === 'artifact') this.received.set(m.n, (this.received.get(m.n) ?? 0) + 1)
      else if (m.type === 'published') this.published.add(m.n)
      else if (m.type === 'publish-failed') this.failures.push(`${m.n}: ${m.error}`)
      else if (m.type === 'view') this.views.get(m.ref)?.(m.view as RpView | null)
    })
  }

  /** Running and not frozen. */
  get alive(): boolean {
    return !this.frozen && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Stopped with SIGSTOP: its connections stay open, it just falls silent. */
  frozen = false

  send(m: ToChild): void {
    if (this.alive) this.proc.send(m)
  }

  view(): Promise<RpView | null> {
    const ref = ++this.ref
    return new Promise((resolve) => {
      this.views.set(ref, resolve)
      this.send({ type: 'view', ref })
    })
  }

  /** SIGKILL: the kernel resets its connections. SIGSTOP: a silent failure. */
  kill(signal: 'SIGKILL' | 'SIGSTOP' = 'SIGKILL'): void {
    if (signal === 'SIGSTOP') this.frozen = true
    this.proc.kill(signal)
  }
}

const children: Child[] = []

afterEach(() => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill('SIGKILL')
})

describe('RP failover with every node in its own process', () => {
  it.each([
    ['killed (connections reset)', 'SIGKILL'],
    ['frozen (silent: heartbeats and hellos time out)', 'SIGSTOP'],
  ] as const)(
    'loses no message when an RP process is %s mid-stream',
    async (_what, signal) => {
      const ids = await clusterIdentities(3, 12)
      const backbone = ids.rps.map((r) => r.addr)
      const rps = ids.rps.map((identity) => {
        const c = new Child({
          identity,
          topic: TOPIC,
          init: { role: 'rp', backbone, helloIntervalMs: 200, redialIntervalMs: 300 },
        })
        children.push(c)
        return c
      })
      const members = ids.members.map((identity, i) => {
        const c = new Child({
          identity,
          topic: TOPIC,
          init: {
            role: 'member',
            rps: rpListFor(i, ids.rps),
            heartbeatIntervalMs: 200,
            redialIntervalMs: 300,
          },
        })
        children.push(c)
        return c
      })
      await waitUntil(() => members.every((m) => m.registered), 40_000, 'every member registered')
      const views = async () => Promise.all(rps.filter((r) => r.alive).map((r) => r.view()))
      let current: Array<RpView | null> = []
      for (let t = 0; t < 150; t++) {
        current = await views()
        if (current.every((v) => v?.totalCounts[TOPIC] === 12 && v.reachable.length === 3)) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(current.map((v) => v?.totalCounts[TOPIC])).toEqual([12, 12, 12])
      // Fail the RP in the middle of the tree (its members and the tree both have to
      // recover), or, if members happened to avoid it, the one with the most members.
      const interior = current.findIndex((v) => v?.treeNeighbours.length === 2)
      expect(interior).toBeGreaterThanOrEqual(0)
      let victim = interior
      if (current[interior]!.members === 0) {
        for (const [k, v] of current.entries()) {
          if (v!.members > current[victim]!.members) victim = k
        }
      }
      const orphans = current[victim]!.members

      for (let n = 0; n < MESSAGES; n++) {
        if (n === KILL_AFTER) rps[victim].kill(signal)
        members[n % 12].send({ type: 'publish', n })
        await new Promise((r) => setTimeout(r, 40))
      }
      await waitUntil(
        () =>
          members.every(
            (m, i) => m.received.size === MESSAGES - MESSAGES / 12 && !m.received.has(i),
          ),
        20_000,
        'every message at every live member',
      ).catch(() => undefined)
      // Counted one by one: member i got every message but its own, exactly once.
      const missing: string[] = []
      for (const [i, m] of members.entries()) {
        for (let n = 0; n < MESSAGES; n++) {
          const want = n % 12 === i ? 0 : 1
          const got = m.received.get(n) ?? 0
          if (got !== want) missing.push(`member ${i} message ${n}: ${got} copies`)
        }
      }
      expect(missing).toEqual([])
      expect(members.flatMap((m) => m.failures)).toEqual([])
      expect(orphans).toBeGreaterThan(0)
      // The orphans registered with the surviving RPs: the counts are whole again.
      const after = await views()
      expect(after.map((v) => v?.totalCounts[TOPIC])).toEqual([12, 12])
      expect(after.reduce((a, v) => a + (v?.localCounts[TOPIC] ?? 0), 0)).toBe(12)
    },
    90_000,
  )
})
