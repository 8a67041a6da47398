import { describe, expect, it } from 'vitest'
import type { PeerKey } from '../../src/common/artifact.ts'
import {
  AnnouncedPulls,
  ArrivalLog,
  FloodReach,
  LinkRoles,
  MAX_PULL_ASKS,
  MAX_PULLS_PER_ANNOUNCER,
} from '../../src/gossip/one-copy.ts'
import { ManualEnv } from './harness.ts'

const T = 'blocks'

/** Logs `n` messages of T: `at(i)` gives each peer's arrival offset (ms) for message i. */
function log(n: number, at: (i: number) => Record<PeerKey, number>): ArrivalLog {
  const l = new ArrivalLog()
  for (let i = 0; i < n; i++) {
    const came = Object.entries(at(i)).map(([p, t]) => [p, 1000 * i + t] as [PeerKey, number])
    l.first(T, `m${i}`, 1000 * i + Math.min(...came.map(([, t]) => t - 1000 * i)), came)
  }
  return l
}

/** Runs one heartbeat's choice with every peer eager before and each pushing once. */
function choose(l: ArrivalLog, peers: PeerKey[], minEager = 2, lazy = new Set<PeerKey>()) {
  return l
    .select(T, peers, (p) => lazy.has(p), [], minEager)
    .filter((c) => !c.lazy)
    .map((c) => c.peer)
}

describe('one-copy eager in-links (ArrivalLog)', () => {
  it('chooses in-links that bring different messages first, not two that bring the same ones', () => {
    // a is first for even messages, b always 1 ms behind a, c first for odd messages.
    const l = log(16, (i) => (i % 2 === 0 ? { a: 0, b: 1, c: 60 } : { a: 50, b: 51, c: 0 }))
    const lazy = new Set(['a', 'b', 'c'])
    expect(choose(l, ['a', 'b', 'c'], 2, lazy).sort()).toEqual(['a', 'c'])
  })

  it('keeps a single eager in-link when a second would save little', () => {
    // a is first for every message; b and c come 2–3 ms later.
    const l = log(16, () => ({ a: 0, b: 2, c: 3 }))
    const changes = l.select(T, ['a', 'b', 'c'], () => false, [], 2)
    expect(
      changes
        .filter((c) => c.lazy)
        .map((c) => c.peer)
        .sort(),
    ).toEqual(['b', 'c'])
    expect(l.eagerWanted(T, 2)).toBe(1)
  })

  it('keeps the current in-links unless another set is clearly faster', () => {
    // a (eager) comes 1 ms after b (lazy): no switch for 1 ms.
    const l = log(16, () => ({ a: 1, b: 0, c: 80 }))
    const changes = l.select(T, ['a', 'b', 'c'], (p) => p !== 'a', [], 1)
    expect(changes).toEqual([])
  })

  it('passes over an eager in-link that pushed nothing while messages came (a silent relay)', () => {
    // s announces every message first (as a silent relay does over a lazy link) but, once
    // eager, pushes nothing: the next heartbeat replaces it and it stays out.
    const l = log(16, () => ({ s: 0, a: 20, b: 40 }))
    let lazy = new Set(['a', 'b'])
    l.select(T, ['s', 'a', 'b'], (p) => lazy.has(p), [], 1)
    for (let i = 16; i < 20; i++) {
      l.first(T, `m${i}`, 1000 * i, [
        ['s', 1000 * i],
        ['a', 1000 * i + 20],
      ])
      l.pushed(T, 'a')
    }
    const changes = l.select(T, ['s', 'a', 'b'], (p) => lazy.has(p), [], 1)
    expect(changes).toEqual([
      { peer: 's', lazy: true },
      { peer: 'a', lazy: false },
    ])
    lazy = new Set(['s', 'b'])
    expect(l.select(T, ['s', 'a', 'b'], (p) => lazy.has(p), [], 1)).toEqual([])
  })
})

/**
 * Announced pulls on a hand-driven clock (follow-up 400 ms, give-up 6 s), recording who is
 * asked; `rtt` gives the links' measured RTTs (none by default).
 */
function pullsBed(rtt: Record<string, number> = {}) {
  const env = new ManualEnv()
  const asked: string[] = []
  const pulls = new AnnouncedPulls(
    {
      now: () => env.now(),
      setTimer: (ms, fn) => env.setTimer(ms, fn),
      have: () => false,
      pull: (peer) => asked.push(peer),
      unanswered: () => {},
      rttMs: (peer) => rtt[peer],
    },
    400,
    6000,
    100,
  )
  /** `peers` announce message `key` in turn (pull delay 50 ms). */
  const announce = (key: string, ...peers: string[]) => {
    for (const peer of peers) pulls.announced(peer, T, new Uint8Array(8), key, 50)
  }
  return { env, asked, pulls, announce }
}

describe('one-copy pull delay (AnnouncedPulls)', () => {
  it('follows the measured lag of pushed copies behind their first announce', () => {
    const { env, asked, pulls } = pullsBed()
    expect(pulls.measuredDelay(T)).toBe(Number.POSITIVE_INFINITY)
    // Copies come 10 ms after their announce.
    for (let i = 0; i < 10; i++) {
      pulls.announced('a', T, new Uint8Array(8), `k${i}`, 50)
      env.advance(10)
      pulls.delivered(`k${i}`)
    }
    expect(pulls.measuredDelay(T)).toBe(12)
    // A message announced and not pushed is pulled after 12 ms, not the configured 50.
    pulls.announced('b', T, new Uint8Array(8), 'late', 50)
    env.advance(11)
    expect(asked).toEqual([])
    env.advance(1)
    expect(asked).toEqual(['b'])
  })
})

describe('one-copy pulls and the preamble (AnnouncedPulls)', () => {
  it('holds the first ask while a preambled copy is on its way', () => {
    const env = new ManualEnv()
    const asked: string[] = []
    let incoming = true
    const pulls = new AnnouncedPulls(
      {
        now: () => env.now(),
        setTimer: (ms, fn) => env.setTimer(ms, fn),
        have: () => false,
        incoming: () => incoming,
        pull: (peer) => asked.push(peer),
        unanswered: () => {},
      },
      400,
      6000,
      100,
    )
    pulls.announced('a', T, new Uint8Array(8), 'k', 50)
    env.advance(200)
    expect(asked).toEqual([])
    // The preamble's deadline passed (the copy did not come): asked within a recheck.
    incoming = false
    env.advance(10)
    expect(asked).toEqual(['a'])
  })
})

describe('one-copy pulls under loss (AnnouncedPulls)', () => {
  it('asks the announcers round after round until their caches would have dropped the message', () => {
    const { env, asked, pulls, announce } = pullsBed()
    announce('k', 'a', 'b')
    // Every reply is lost: a, b, a, b, ... every 400 ms from 50 ms on; a round starts only
    // within 6 s of the first announce (the last at 5,650 ms: 8 rounds of two).
    env.advance(10_000)
    expect(asked.length).toBe(16)
    expect(asked.slice(0, 4)).toEqual(['a', 'b', 'a', 'b'])
    expect(pulls.size).toBe(0)
  })
})

describe('one-copy pulls from a relay that announces but never answers (AnnouncedPulls)', () => {
  it('asks the announcer whose asks timed out last, until it answers again', () => {
    const { env, asked, pulls, announce } = pullsBed()
    announce('k1', 'silent', 'b')
    env.advance(500)
    // The silent relay announced first and was asked first; 400 ms later b was.
    expect(asked).toEqual(['silent', 'b'])
    pulls.delivered('k1', 'b')
    // Next message: the silent relay announces first again, but b is asked first.
    announce('k2', 'silent', 'b')
    env.advance(60)
    expect(asked.slice(2)).toEqual(['b'])
    pulls.delivered('k2', 'b')
    // Once it answers an ask, it is asked in its turn again.
    announce('k3', 'silent')
    env.advance(60)
    expect(asked.slice(3)).toEqual(['silent'])
    pulls.delivered('k3', 'silent')
    announce('k4', 'silent', 'b')
    env.advance(60)
    expect(asked.slice(4)).toEqual(['silent'])
  })
})

describe('one-copy follow-up from the asked link RTT (AnnouncedPulls)', () => {
  it('asks the next announcer after a few round trips of the asked link, not the flat follow-up', () => {
    const { env, asked, announce } = pullsBed({ silent: 30, b: 200 })
    announce('k1', 'silent', 'b', 'c')
    // Asked at 50 ms; 2 × 30 + 20 = 80 ms later (not 400) b is.
    env.advance(50)
    expect(asked).toEqual(['silent'])
    env.advance(79)
    expect(asked).toEqual(['silent'])
    env.advance(1)
    expect(asked).toEqual(['silent', 'b'])
    // A far link's follow-up stays within the configured one (400 ms, not 420).
    env.advance(399)
    expect(asked).toEqual(['silent', 'b'])
    env.advance(1)
    expect(asked).toEqual(['silent', 'b', 'c'])
  })

  it('asks the nearest announcer first, not the first to announce', () => {
    const { env, asked, pulls, announce } = pullsBed({ far: 150, near: 10, mid: 60 })
    announce('k1', 'far', 'unmeasured', 'mid', 'near')
    env.advance(50)
    expect(asked).toEqual(['near'])
    // Its ask timed out (2 × 10 + 20 = 40 ms, the least follow-up): the next nearest.
    env.advance(40)
    expect(asked).toEqual(['near', 'mid'])
    pulls.delivered('k1', 'mid')
    // A nearer announcer whose last ask timed out is asked after one that answered.
    announce('k2', 'near', 'far')
    env.advance(50)
    expect(asked.slice(2)).toEqual(['far'])
  })

  it('counts an answer that came after the next ask went as an answer', () => {
    const { env, asked, pulls, announce } = pullsBed({ slow: 30, b: 30 })
    announce('k1', 'slow', 'b')
    env.advance(130)
    expect(asked).toEqual(['slow', 'b'])
    pulls.delivered('k1', 'b')
    // The slow peer's copy comes after b's: it answers, so it is asked in its turn again.
    env.advance(20)
    pulls.answeredKnown('k1', 'slow')
    announce('k2', 'slow', 'b')
    env.advance(50)
    expect(asked.slice(2)).toEqual(['slow'])
  })
})

describe('one-copy flood reach (FloodReach)', () => {
  it("sizes a flood root's push by the share of the network the flood reaches", () => {
    const reach = new FloodReach()
    // Too few messages seen: the whole mesh.
    for (let i = 0; i < 15; i++) reach.arrived(T, i % 8 === 0)
    expect(reach.rootPushes(T, 10, 8)).toBe(Number.POSITIVE_INFINITY)
    // 6 of 64 first copies from the flood, 10 topic peers, 8 in the mesh: the flood reaches
    // 6/64 · 10/2 ≈ 0.47 of the network, so 2 pushes per root reach the rest.
    const small = new FloodReach()
    for (let i = 0; i < 64; i++) small.arrived(T, i % 11 === 0)
    expect(small.rootPushes(T, 10, 8)).toBe(2)
    // 2 of 64, 50 topic peers, 8 in the mesh (as at 1,000 nodes): ≈ 0.037, 26 pushes.
    const large = new FloodReach()
    for (let i = 0; i < 64; i++) large.arrived(T, i % 32 === 0)
    expect(large.rootPushes(T, 50, 8)).toBe(26)
    // Every topic peer in the mesh: no flood roots to count from.
    expect(large.rootPushes(T, 8, 8)).toBe(Number.POSITIVE_INFINITY)
  })
})

/** Roles over `mesh` (topic T), logging sent and queued CHOKE/UNCHOKE, with `env`'s timers if given. */
function rolesOver(mesh: Set<PeerKey>, env?: ManualEnv) {
  const sent: string[] = []
  const queued: string[] = []
  const roles = new LinkRoles(
    {
      meshOf: (t) => (t === T ? mesh : undefined),
      speaksOneCopy: () => true,
      sendRole: (peer, _t, lazy) => sent.push(`${lazy ? 'choke' : 'unchoke'} ${peer}`),
      queueRole: (peer, _t, lazy) => queued.push(`${lazy ? 'choke' : 'unchoke'} ${peer}`),
      announceOnly: () => {},
      setTimer: (ms, fn) => (env === undefined ? { cancel: () => {} } : env.setTimer(ms, fn)),
    },
    2,
  )
  return { roles, sent, queued }
}

describe('one-copy roles (LinkRoles)', () => {
  it('takes a CHOKE that comes before the GRAFT it follows (same frame) for a topic it meshes', () => {
    const mesh = new Set<PeerKey>()
    const roles = new LinkRoles(
      {
        meshOf: (t) => (t === T ? mesh : undefined),
        speaksOneCopy: () => true,
        sendRole: () => {},
        queueRole: () => {},
        announceOnly: () => {},
        setTimer: () => ({ cancel: () => {} }),
      },
      2,
    )
    roles.peerAsked(T, 'p', true)
    mesh.add('p')
    expect(roles.announcesTo(T, 'p')).toBe(true)
    // A topic without a mesh keeps no roles.
    roles.peerAsked('other', 'p', true)
    expect(roles.announcesTo('other', 'p')).toBe(false)
  })
  it('keeps two spare in-links while learning, then chooses from the first message 100 ms after it', () => {
    const env = new ManualEnv()
    const { roles, sent, queued } = rolesOver(new Set<PeerKey>(['a', 'b', 'c', 'd', 'e']), env)
    // A heartbeat before any message: four of five in-links stay eager (2 + the spares).
    roles.heartbeat([T])
    expect(queued).toEqual(['choke e'])
    // The first message: e (lazy) announced it first, a (eager) pushed it 30 ms later, b later.
    roles.arrived(T, 'm0', 130, [
      ['e', 100],
      ['a', 130],
    ])
    roles.arrivedLate(T, 'm0', 'b', 160, true)
    env.advance(99)
    expect(sent).toEqual([])
    // 100 ms after it: e alone brings it earliest and a second in-link saves under 15 ms.
    env.advance(1)
    expect(sent.sort()).toEqual(['choke a', 'choke b', 'choke c', 'choke d', 'unchoke e'])
    expect(roles.announcesToUs(T, 'e')).toBe(false)
    expect(roles.announcesToUs(T, 'a')).toBe(true)
    // Only the topic's first message starts such a choice.
    roles.arrived(T, 'm1', 1000, [['e', 1000]])
    env.advance(200)
    expect(sent).toHaveLength(5)
  })
  it("repeats a CHOKE on a lazy in-link's second push, not its first (a flood root's)", () => {
    const { roles, sent, queued } = rolesOver(new Set<PeerKey>(['a', 'b', 'c', 'd']))
    // A duplicate over one of four eager in-links chokes it at once.
    roles.duplicate(T, 'd')
    expect(sent).toEqual(['choke d'])
    // d pushes again over the lazy link: once may be a root's push, twice is a lost CHOKE.
    roles.duplicate(T, 'd')
    expect(queued).toEqual([])
    roles.duplicate(T, 'd')
    expect(queued).toEqual(['choke d'])
    // The count starts over after each repeat.
    roles.duplicate(T, 'd')
    expect(queued).toEqual(['choke d'])
    roles.duplicate(T, 'd')
    expect(queued).toEqual(['choke d', 'choke d'])
  })
})

describe('one-copy pulls under an announce flood (AnnouncedPulls)', () => {
  function pullsOn(env: ManualEnv) {
    const asked: string[] = []
    const unanswered: string[] = []
    let timers = 0
    const pulls = new AnnouncedPulls(
      {
        now: () => env.now(),
        setTimer: (ms, fn) => {
          timers++
          return env.setTimer(ms, fn)
        },
        have: () => false,
        pull: (peer) => asked.push(peer),
        unanswered: (peer) => unanswered.push(peer),
      },
      400,
      6000,
      10_000,
    )
    return { pulls, asked, unanswered, timers: () => timers }
  }

  it("open at most MAX_PULLS_PER_ANNOUNCER of one peer's unknown ids; others' announces still count", () => {
    const env = new ManualEnv()
    const { pulls, asked, unanswered, timers } = pullsOn(env)
    // Two frames of 5,000 ids nobody has.
    let refused = 0
    for (let i = 0; i < 10_000; i++) {
      if (!pulls.announced('x', T, new Uint8Array(8), `x${i}`, 50)) refused++
    }
    expect(refused).toBe(10_000 - MAX_PULLS_PER_ANNOUNCER)
    expect(pulls.size).toBe(MAX_PULLS_PER_ANNOUNCER)
    expect(timers()).toBe(MAX_PULLS_PER_ANNOUNCER)
    // An honest peer's announce opens its own entry, and joins the flooder's as an announcer.
    expect(pulls.announced('h', T, new Uint8Array(8), 'honest', 50)).toBe(true)
    expect(pulls.announced('h', T, new Uint8Array(8), 'x0', 50)).toBe(true)
    expect(pulls.announcers('x0')?.has('h')).toBe(true)
    env.advance(50)
    expect(asked.filter((p) => p === 'h')).toHaveLength(1)
    // Delivered ids leave the flooder's share at once; the rest when given up.
    for (let i = 0; i < 10; i++) pulls.delivered(`x${i}`)
    expect(pulls.openedBy('x')).toBe(MAX_PULLS_PER_ANNOUNCER - 10)
    expect(pulls.announced('x', T, new Uint8Array(8), 'again', 50)).toBe(true)
    env.advance(10_000)
    expect(pulls.openedBy('x')).toBe(0)
    expect(pulls.openedBy('h')).toBe(0)
    // Each open id cost the flooder's victim at most MAX_PULL_ASKS asks of it.
    expect(asked.filter((p) => p === 'x').length).toBeLessThanOrEqual(
      (MAX_PULLS_PER_ANNOUNCER + 1) * MAX_PULL_ASKS,
    )
    // Each id given up on counts once against each peer asked for it and never answering: the
    // 55 the flooder opened that never came, and h's own ('x0', which h joined, came).
    expect(unanswered.filter((p) => p === 'x')).toHaveLength(MAX_PULLS_PER_ANNOUNCER - 10 + 1)
    expect(unanswered.filter((p) => p === 'h')).toEqual(['h'])
  })

  it('free the share of a message we had when its announcer answers with it, and keep asking as before', () => {
    const env = new ManualEnv()
    const { pulls, asked } = pullsOn(env)
    // Our own message announced back (a publisher that did not record its short id).
    pulls.announced('x', T, new Uint8Array(8), 'own', 0)
    env.advance(0)
    expect(asked).toEqual(['x'])
    // A copy from another peer, or one we did not ask x for, frees nothing.
    pulls.answeredKnown('own', 'y')
    expect(pulls.openedBy('x')).toBe(1)
    pulls.answeredKnown('own', 'x')
    expect(pulls.openedBy('x')).toBe(0)
    // The asks go on (they are the pull's redundancy under loss) without counting against x.
    env.advance(400)
    expect(asked).toEqual(['x', 'x'])
    expect(pulls.openedBy('x')).toBe(0)
    env.advance(10_000)
    expect(pulls.size).toBe(0)
    expect(pulls.openedBy('x')).toBe(0)
  })

  it('free the share when an entry is given up or cleared', () => {
    const env = new ManualEnv()
    const { pulls } = pullsOn(env)
    for (let i = 0; i < MAX_PULLS_PER_ANNOUNCER; i++)
      pulls.announced('x', T, new Uint8Array(8), `a${i}`, 0)
    expect(pulls.announced('x', T, new Uint8Array(8), 'b', 0)).toBe(false)
    // Past giveUpMs every entry was dropped: the peer may open as many again.
    env.advance(6000 + 400 * (MAX_PULL_ASKS + 1))
    expect(pulls.size).toBe(0)
    expect(pulls.announced('x', T, new Uint8Array(8), 'b', 0)).toBe(true)
    pulls.clear()
    expect(pulls.openedBy('x')).toBe(0)
  })
})
