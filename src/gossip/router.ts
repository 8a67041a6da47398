import type { PrivateKey } from '@libp2p/interface'
import type { Artifact, ArtifactClass, PeerKey, Topic } from '../common/artifact.ts'
import { setNewest } from '../common/bounded-map.ts'
import { CoreBase } from '../common/core-base.ts'
import type { Dissemination, PublishOptions, PublishResult } from '../common/dissemination.ts'
import type { Env, PeerInfo, ProtocolCore, TimerHandle } from '../common/env.ts'
import {
  DuplicateMessageError,
  InvalidParametersError,
  MessageTooLargeError,
  NoPeersError,
  NotStartedError,
} from '../common/errors.ts'
import { CONTENT_ID_LENGTH, type MessageId, messageIdKey } from '../common/message-id.ts'
import { SlotPool } from '../common/peer-slots.ts'
import { SeenCache } from '../common/seen-cache.ts'
import { SmallSet } from '../common/small-set.ts'
import { TokenBucket } from '../common/token-bucket.ts'
import type { ValidationResult } from '../common/validation.ts'
import { BudgetedLimits } from './budgeted-limits.ts'
import { ControlCounts } from './control-counts.ts'
import { type AdvertisedId, IWantLimiter } from './iwant-limiter.ts'
import { MessageCache } from './mcache.ts'
import { MeshMaintenance, pruneEntry } from './mesh-maintenance.ts'
import {
  AnnouncedPulls,
  bytesKey,
  FloodReach,
  LinkRoles,
  MAX_PULL_ASKS,
  peerHash,
  peerHashBytes,
  peerHashesBytes,
  peerHashOf,
  shortId,
  topicHash,
} from './one-copy.ts'
import {
  type GossipParams,
  type GossipParamsOptions,
  PROFILES,
  resolveGossipParams,
} from './params.ts'
import { type BudgetKind, PeerBudgets } from './peer-budget.ts'
import { Preambles } from './preamble.ts'
import { supportsExtensions, supportsIDontWant } from './protocol-ids.ts'
import { shuffle } from './random-pick.ts'
import {
  announcedIdCount,
  checkRpcPrefix,
  type DecodeWork,
  decodeRpc,
  emptyControl,
  emptyOneCopy,
  encodeRpc,
  HELLO_ACK,
  HELLO_ASK,
  hasOneCopyMessages,
  idAt,
  idCount,
  idCountOf,
  isControlEmpty,
  isOneCopyEmpty,
  payloadBytes,
  type Rpc,
  type RpcControl,
  type RpcExtensions,
  type RpcGraft,
  type RpcIHave,
  type RpcIWant,
  type RpcLimits,
  type RpcMessage,
  type RpcOneCopy,
  type RpcPreamble,
  type RpcPrune,
  type RpcSubscription,
  withEntry,
} from './rpc-codec.ts'
import { PeerScore } from './score.ts'
import {
  checkAuthFields,
  defaultMessageId,
  type MessageIdFn,
  MessageSigner,
  verifySignature,
} from './signing.ts'
import { distanceCost, SourceTreeLinks, TREE_LEARNING_EXTRA } from './source-tree-links.ts'
import { UplinkQueue } from './uplink-queue.ts'

/** The optimized profile's rules for GRAFTs, met by peers without one-copy (see withoutOneCopy). */
const OPTIMIZED_GRAFT_RULES = {
  acceptGraftsUpTo: PROFILES.optimized.acceptGraftsUpTo,
  dialledGraftsBeyondLimit: PROFILES.optimized.dialledGraftsBeyondLimit,
}

const EMPTY = new Uint8Array(0)

/** Large pushes per peer remembered to match against its IDONTWANTs. */
const MAX_RECENT_PUSHES = 64

/** A message's flood mark (one-copy rule 2). */
interface FloodMark {
  /**
   * Peer hashes of the peers its publisher sent it to, sorted (4 bytes each, where a Set of
   * hashes above 2^30 costs ~30; one array shared by the messages of a frame).
   */
  peers: Uint32Array
  /** Our first copy came straight from its publisher (we are one of `peers`). */
  direct: boolean
}

/** One-copy: flood marks (`sentTo`) kept, one per recent message (used when it is forwarded). */
const MAX_SENT_TO = 256

/** A frame's `sentTo` as sorted hashes; undefined when it has none. */
function sortedHashes(sentTo: Uint8Array[] | undefined): Uint32Array | undefined {
  if (sentTo === undefined) return undefined
  return Uint32Array.from(sentTo, peerHashOf).sort()
}

/** True when sorted `hashes` holds `h` (binary search). */
function hasHash(hashes: Uint32Array, h: number): boolean {
  let lo = 0
  let hi = hashes.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (hashes[mid] === h) return true
    if (hashes[mid] < h) lo = mid + 1
    else hi = mid - 1
  }
  return false
}

/** Per-heartbeat decay of the push counts that rank eager-push peers. */
const PUSH_DECAY = 0.9

/** Messages per peer remembered to spot one it sends again (an honest peer sends each once). */
const MAX_RECENT_RECEIVED = 256

/** Options of {@link GossipRouter}: parameters plus identity. */
export interface GossipRouterOptions extends GossipParamsOptions {
  /** The node's libp2p private key; required by the StrictSign policy. */
  privateKey?: PrivateKey
  /** Overrides the message id function (all nodes of a network must agree on it). */
  msgIdFn?: MessageIdFn
  /** First sequence number of StrictSign messages (default: the clock in nanoseconds). */
  firstSeqno?: bigint
  /**
   * Decodes each received frame (default {@link decodeRpc}). The simulator passes one that
   * decodes a frame sent to many peers once; the router never changes a decoded RPC, so
   * receivers can share it.
   */
  decodeRpc?: RpcDecoder
  /**
   * Encodes each sent frame (default {@link encodeRpc}). The simulator passes one that hands
   * back the frame a forwarded message arrived in, so that every node relays one buffer.
   */
  encodeRpc?: RpcEncoder
  /**
   * Parameters already resolved (by {@link resolveGossipParams}), used as they are instead of
   * the parameter options, which must then be left out: a simulator resolves them once for
   * thousands of nodes.
   */
  params?: GossipParams
}

/** Decodes a frame within `limits`, counting the fields read in `work` (as {@link decodeRpc}). */
export type RpcDecoder = (frame: Uint8Array, limits: RpcLimits, work: DecodeWork) => Rpc

/** Encodes an RPC into the same bytes {@link encodeRpc} gives (the frame may be shared). */
export type RpcEncoder = (rpc: Rpc) => Uint8Array

/** {@link PeerState} flag bits: one number for six booleans (a simulation holds millions of peers). */
const OUTBOUND = 1
const SENT_EXTENSIONS = 2
const ONE_COPY_HEARD = 4
const ONE_COPY = 8
const PREAMBLE = 16
const SOURCE_TREES = 32
/** A frame came from it (meshsub 1.3 Extensions may only come in the first). */
const FRAME_SEEN = 64
/** {@link PeerState.upkeep} is kept in these two bits. */
const UPKEEP_SHIFT = 7
const UPKEEP_MASK = 3 << UPKEEP_SHIFT

/** Large messages pushed to a peer: how useful our pushes are to it (made on the first). */
class LargePushes {
  /** Pushed to it, decayed every heartbeat. */
  count = 0
  /** Of those, the ones it had from another peer first (its IDONTWANT followed or cancelled our copy). */
  wasted = 0
  /** Keys of the last ones (bounded by `MAX_RECENT_PUSHES`). */
  readonly recent = new Set<string>()
}

/**
 * What the router knows about a connected peer. It is itself the set of the peer's topics
 * (see {@link topics}): a peer usually has one or two, and a set object of its own per peer
 * cost 40 bytes each of the 3.6 million peers of a 72,000-node simulation.
 */
class PeerState extends SmallSet<Topic> {
  protocol: string | undefined
  /** IDONTWANT ids from this peer → expiry time (insertion order is time order); made on first use. */
  dontWant: Map<string, number> | undefined = undefined
  ihavesThisHeartbeat = 0
  askedThisHeartbeat = 0
  /** Large messages pushed to it; made on the first (most peers of a large simulation get none). */
  largePushes: LargePushes | undefined = undefined
  /** Keys of the last messages it sent us (bounded by `MAX_RECENT_RECEIVED`), to spot repeats. */
  recentReceived: SmallSet<string> | undefined = undefined
  /**
   * The next peer of the router's busy list (see {@link GossipRouter.busyPeers}): a link in
   * the peer itself, so that listing it touches nothing else.
   */
  nextBusy: PeerState | undefined = undefined
  /** Control queued for it until the heartbeat's end (see {@link GossipRouter.control}). */
  pending: RpcControl | undefined = undefined
  /** Entries of `dontWanted` its IDONTWANTs started (at most {@link MAX_PULLS_AWAITED_PER_PEER}). */
  pullsAwaited = 0
  /** Its slot (from `slots`), which also holds its score and budgets. */
  readonly slot: number
  /**
   * The booleans below and {@link upkeep}, as bits ({@link OUTBOUND} ...): one number, not a
   * field each, in an object a simulation holds millions of.
   */
  private flags: number

  constructor(protocol: string | undefined, outbound: boolean, slot: number) {
    super()
    this.protocol = protocol
    this.slot = slot
    this.flags = outbound ? OUTBOUND : 0
  }

  /** The topics the peer subscribed to (held in this object's own fields). */
  get topics(): SmallSet<Topic> {
    return this
  }

  /**
   * Whether the heartbeat has per-peer upkeep for it (counters to reset or decay, IDONTWANTs to
   * expire): {@link IDLE}, {@link BUSY} (in `busyPeers`) or {@link GONE} (disconnected).
   */
  get upkeep(): number {
    return (this.flags & UPKEEP_MASK) >> UPKEEP_SHIFT
  }
  set upkeep(state: number) {
    this.flags = (this.flags & ~UPKEEP_MASK) | (state << UPKEEP_SHIFT)
  }

  /** A frame came from it. */
  get frameSeen(): boolean {
    return (this.flags & FRAME_SEEN) !== 0
  }
  set frameSeen(on: boolean) {
    this.setFlag(FRAME_SEEN, on)
  }

  /** We dialled it. */
  get outbound(): boolean {
    return (this.flags & OUTBOUND) !== 0
  }

  /** It sent its Extensions control message. */
  get sentExtensions(): boolean {
    return (this.flags & SENT_EXTENSIONS) !== 0
  }
  set sentExtensions(on: boolean) {
    this.setFlag(SENT_EXTENSIONS, on)
  }

  /** It advertised the one-copy extension (Extensions or a hello): we accept its one-copy messages. */
  get oneCopyHeard(): boolean {
    return (this.flags & ONE_COPY_HEARD) !== 0
  }
  set oneCopyHeard(on: boolean) {
    this.setFlag(ONE_COPY_HEARD, on)
  }

  /** Both ends speak the one-copy extension and each knows the other heard it (a hello came). */
  get oneCopy(): boolean {
    return (this.flags & ONE_COPY) !== 0
  }
  set oneCopy(on: boolean) {
    this.setFlag(ONE_COPY, on)
  }

  /** Both ends speak the preamble extension (its Extensions said so): PREAMBLE and IMRECEIVING flow. */
  get preamble(): boolean {
    return (this.flags & PREAMBLE) !== 0
  }
  set preamble(on: boolean) {
    this.setFlag(PREAMBLE, on)
  }

  /** Both ends run one-copy source trees (its Extensions said so): distances, pings, `source`. */
  get sourceTrees(): boolean {
    return (this.flags & SOURCE_TREES) !== 0
  }
  set sourceTrees(on: boolean) {
    this.setFlag(SOURCE_TREES, on)
  }

  private setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit
  }
}

/** {@link GossipRouter}'s one-copy state (made only when one-copy runs). */
interface OneCopyState {
  /** Who pushes to whom on each mesh link, and who announces. */
  readonly roles: LinkRoles
  /** Announced messages not yet here. */
  readonly pulls: AnnouncedPulls
  /** Short id (hex) → message key of recent messages, oldest first (bounded). */
  readonly shortIndex: Map<string, string>
  /** How far publishers' floods reach, to size flood roots' pushes (rule 2). */
  readonly floodReach: FloodReach
  /** Messages whose first copy came from outside the mesh (a flood publish; bounded). */
  readonly publishedTo: Set<string>
  /**
   * Peers each recent message went to straight from its sender's flood (`sentTo`, peer
   * hashes; bounded): they need no push from us.
   */
  readonly sentTo: Map<string, FloodMark>
  /**
   * Short ids of preambled messages (announces name them so): an announced one whose copy is
   * on its way is not pulled yet. Bounded like the preambles.
   */
  readonly preambledShort: Map<string, string>
  /** Connected peers' hashes (`sentTo`, `inLinks`), made on first use. */
  readonly peerHashes: Map<PeerKey, number>
  /** Peers sent heartbeat gossip per topic this heartbeat (at most `oneCopyGossipPeers`). */
  readonly gossiped: Map<Topic, number>
}

/** {@link PeerState.upkeep}: nothing for the heartbeat to do. */
const IDLE = 0
/** {@link PeerState.upkeep}: listed in `busyPeers`, visited at the next heartbeat. */
const BUSY = 1
/** {@link PeerState.upkeep}: disconnected; never listed again. */
const GONE = 2

function emptyRpc(): Rpc {
  return { subscriptions: [], messages: [], control: emptyControl() }
}

function isRpcEmpty(rpc: Rpc): boolean {
  return rpc.subscriptions.length === 0 && rpc.messages.length === 0 && isControlEmpty(rpc.control)
}

/** Calls `fn` with a value that may or may not be a promise (synchronously when it is not). */
function settle<T>(v: T | Promise<T>, fn: (v: T) => void, onError: (e: unknown) => void): void {
  if (v instanceof Promise) v.then(fn, onError)
  else fn(v)
}

/**
 * A sans-IO gossipsub router (meshsub 1.0–1.2): mesh maintenance with GRAFT/PRUNE and
 * backoff, opportunistic grafting, fanout, IHAVE/IWANT gossip from a message cache, flood
 * publish, StrictSign/StrictNoSign, per-topic validators, the v1.1 peer score, IDONTWANT,
 * bounded concurrent IWANT and per-topic artifact classes. Driven only through its
 * {@link Env}, so the simulator and the libp2p service run the same code.
 */
export class GossipRouter extends CoreBase implements ProtocolCore, Dissemination {
  /** The strategy name. */
  readonly strategy = 'gossip' as const
  /** The resolved, validated parameters. */
  readonly params: GossipParams
  /** Message frames dropped because the send queue was full. */
  get droppedFrames(): number {
    return this.uplink.droppedFrames
  }
  /** Queued message frames cancelled by the peer's IDONTWANT before they were sent. */
  get cancelledByIDontWant(): number {
    return this.uplink.cancelledByIDontWant
  }
  /** Peers disconnected (and denied) for going on past their budgets. */
  peersDisconnected = 0
  /** Most protobuf fields decoded from one frame so far: the decoding work of the worst frame. */
  maxFieldsPerFrame = 0

  private readonly peers = new Map<PeerKey, PeerState>()
  /** Slots of the connected peers, shared with the score and the budgets (one lookup finds all). */
  private readonly slots = new SlotPool()
  /**
   * Peers with heartbeat upkeep (see {@link PeerState.upkeep}), so that a heartbeat visits
   * those instead of every peer: at 72,000 nodes × 50 peers most peers are idle and each
   * visit is a cache miss. The first of a list linked through {@link PeerState.nextBusy}
   * (an array's append was a cache miss of its own for every message a peer sent).
   */
  private busyPeers: PeerState | undefined = undefined
  private readonly topicPeers = new Map<Topic, Set<PeerKey>>()
  private readonly meshes: MeshMaintenance
  private readonly subscriptions = new Set<Topic>()
  private readonly classes = new Map<Topic, ArtifactClass>()
  /**
   * Peers with control queued (in {@link PeerState.pending}), in the order it was first
   * queued, and their states then (a peer that left and came back is listed again, later):
   * the first `pendingCount` entries. A map cleared at every heartbeat regrew its table each
   * time.
   */
  private readonly pendingPeers: PeerKey[] = []
  private readonly pendingStates: (PeerState | undefined)[] = []
  private pendingCount = 0
  private readonly pendingOneCopy = new Map<PeerKey, RpcOneCopy>()
  /**
   * One-copy's state, made only when one-copy runs: a stock router's ~20 empty maps and
   * their hosts' closures were ~5 KB per node, 8% of a 72,000-node simulation's heap.
   */
  private readonly oc: OneCopyState | undefined
  /** Messages some peer sent IDONTWANT for, not here yet: pulled if they do not come. */
  private readonly dontWanted = new Map<string, AwaitedPull>()
  /** The `sentTo` of the frame being read, from a one-copy peer, sorted (see {@link FloodMark}). */
  private frameSentTo: Uint32Array | undefined
  /** One-copy: flood-mark hashes this node may still pass on (see {@link markAllowed}). */
  private markAllowance: TokenBucket | undefined
  /** One-copy and preamble messages: topic hash (hex) → subscribed topic. */
  private readonly topicByHash = new Map<string, Topic>()
  /** One-copy source trees (`oneCopySourceTrees`): distances, parents, link RTTs, sources. */
  private readonly treeLinks: SourceTreeLinks | undefined
  /** Preamble extension: preambled messages we await, and our peers' IMRECEIVING notices. */
  private readonly preambles: Preambles
  /** Explicit peering agreements: forwarded to unconditionally, kept out of the mesh. */
  private readonly direct: ReadonlySet<PeerKey>
  /**
   * Messages pending validation → the peers that sent a copy meanwhile, skipped when the
   * message is forwarded (they have it). Bounded by `maxPendingValidations`; each set holds
   * connected peers at most once.
   */
  private readonly validating = new Map<string, Set<PeerKey>>()
  private readonly mcache: MessageCache
  private readonly seen: SeenCache
  private readonly limiter: IWantLimiter
  private readonly score: PeerScore
  private readonly budgets: PeerBudgets
  private readonly budgetedLimits: BudgetedLimits
  private readonly signer: MessageSigner | undefined
  private readonly msgIdFn: MessageIdFn
  private readonly decodeRpc: RpcDecoder
  private readonly encodeRpc: RpcEncoder
  private readonly uplink: UplinkQueue
  private heartbeatTimer: TimerHandle | undefined
  /** The heartbeat's callback, made once: a closure per heartbeat would live a whole interval. */
  private readonly beat = (): void => this.heartbeat()
  private hello: Uint8Array | undefined
  private lastDecay = 0
  /** The decoding work of the frame being received (one object, reset for each frame). */
  private readonly work: DecodeWork = { fields: 0 }
  /** Every frame's control messages, counted by kind into the stats. */
  private readonly counts = new ControlCounts(this.recorder)

  constructor(env: Env, options: GossipRouterOptions = {}) {
    super(env, 'consensus-multicast:gossip')
    const {
      privateKey,
      msgIdFn,
      firstSeqno,
      decodeRpc: decoder,
      encodeRpc: encoder,
      params: resolved,
      ...paramOptions
    } = options
    if (resolved !== undefined && Object.keys(paramOptions).length > 0) {
      throw new InvalidParametersError('give either resolved params or parameter options')
    }
    this.params = resolved ?? resolveGossipParams(paramOptions)
    const p = this.params
    if (p.signaturePolicy === 'StrictSign') {
      if (privateKey === undefined) {
        throw new InvalidParametersError('the StrictSign policy needs the node privateKey')
      }
      this.signer = new MessageSigner(
        privateKey,
        firstSeqno ?? BigInt(Math.floor(env.now())) * 1_000_000n,
      )
    }
    this.msgIdFn = msgIdFn ?? defaultMessageId(p.signaturePolicy)
    this.decodeRpc = decoder ?? decodeRpc
    this.encodeRpc = encoder ?? encodeRpc
    this.direct = p.directPeers.length > 0 ? new Set(p.directPeers) : NO_DIRECT_PEERS
    for (const [topic, cls] of Object.entries(p.topicClasses)) this.classes.set(topic, cls)
    this.mcache = new MessageCache(p.mcacheLength, p.mcacheGossip)
    this.seen = new SeenCache(p.seenTtlMs, p.maxSeenEntries)
    const slotOf = (peer: PeerKey) => this.peers.get(peer)?.slot
    this.score = new PeerScore(p.score, () => env.now(), slotOf)
    this.budgets = new PeerBudgets(p.budgets, () => env.now(), slotOf)
    this.budgetedLimits = new BudgetedLimits(p.rpcLimits, this.budgets)
    this.meshes = new MeshMaintenance({
      params: p,
      score: this.score,
      now: () => env.now(),
      random: () => env.random(),
      topicPeers: (topic) => this.topicPeers.get(topic),
      isDirect: (peer) => this.isDirect(peer),
      isOutbound: (peer) => this.peers.get(peer)?.outbound === true,
      control: (peer) => this.control(peer),
      gossipIds: (topic) => this.mcache.gossipIds(topic),
      doesNotWant: (peer, key) => this.peerDoesNotWant(peer, key),
      gossip: (peer, topic, ids) => this.gossipTo(peer, topic, ids),
      left: (topic, peer) => {
        this.oc?.roles.left(topic, peer)
        this.treeLinks?.meshLeft(topic, peer)
      },
    })
    this.treeLinks = p.oneCopySourceTrees
      ? new SourceTreeLinks(
          {
            self: env.self,
            now: () => env.now(),
            setTimer: (ms, fn) => env.setTimer(ms, fn),
            running: () => this.running,
            peer: (peer) => this.peers.get(peer),
            hashOf: (peer) => this.hashOf(peer),
            topicByHash: (hash) => this.topicByHash.get(bytesKey(hash)),
            topicPeers: (topic) => this.topicPeers.get(topic),
            meshOf: (topic) => this.meshes.meshOf(topic),
            subscriptions: () => this.subscriptions,
            copyMs: (bytes) => this.copyMs(bytes),
            floodTargets: (topic) => this.publishTargets(topic, this.classOf(topic)),
            sendOneCopy: (peer, o) => this.sendOneCopy(peer, o),
            queuePing: (peer, nonce) => {
              this.pendingOneCopyOf(peer).ping = nonce
            },
            reject: (peer, reason) => this.reject(peer, reason),
            owesNoDeliveries: (peer) => this.score.treeLink(peer),
            event: (name) => this.recorder.event(name),
          },
          p,
        )
      : undefined
    this.oc = p.oneCopy ? this.oneCopyState(p) : undefined
    this.preambles = new Preambles(
      {
        graceMs: p.preambleGraceMs,
        defaultBps: p.preambleDefaultBps,
        maxPerPeer: p.maxPreamblesPerPeer,
        maxEntries: p.maxPreambles,
        holdMs: p.idontwantTtlMs,
      },
      {
        now: () => env.now(),
        setTimer: (ms, fn) => env.setTimer(ms, fn),
        overdue: (key, id, sender) => this.preambleOverdue(key, id, sender),
      },
    )
    this.uplink = new UplinkQueue(
      p.uploadBps,
      p.maxSendQueue,
      {
        now: () => env.now(),
        setTimer: (ms, fn) => env.setTimer(ms, fn),
        running: () => this.running,
        unwanted: (peer, key) => this.peerDoesNotWant(peer, key),
        transmit: (item) => {
          this.recorder.frameSent(item.frame.length, item.payload)
          this.env.send(item.peer, item.frame)
          this.notePush(item.peer, item.key, item.payload)
        },
        cancelled: (item) => this.noteUnneededPush(item.peer, item.payload),
        announce: (item) => this.preambleTo(item.peer, item.key, item.payload),
      },
      p.preambleLeadMs,
    )
    this.limiter = new IWantLimiter(
      {
        maxConcurrent: p.maxConcurrentIWant,
        followupMs: p.iwantFollowupMs,
        maxAlternates: p.maxIWantAlternates,
        maxTracked: p.maxIWantTracked,
      },
      {
        setTimer: (ms, fn) => env.setTimer(ms, fn),
        request: (peer, ids) => {
          if (this.peers.has(peer)) this.send(peer, { ...emptyRpc(), control: iwant(ids) })
        },
        brokenPromise: (peer) => {
          this.score.addPenalty(peer, 1)
          this.recorder.penalise(peer, 'broken-iwant-promise')
        },
      },
    )
  }

  /** One-copy's state (see {@link oc}). */
  private oneCopyState(p: GossipParams): OneCopyState {
    const shortIndex = new Map<string, string>()
    const preambledShort = new Map<string, string>()
    const roles = new LinkRoles(
      {
        meshOf: (topic) => this.meshes.meshOf(topic),
        speaksOneCopy: (peer) => this.peers.get(peer)?.oneCopy === true,
        sendRole: (peer, topic, lazy) =>
          this.sendOneCopy(peer, { ...emptyOneCopy(), [lazy ? 'choke' : 'unchoke']: [topic] }),
        queueRole: (peer, topic, lazy) => {
          const o = this.pendingOneCopyOf(peer)
          const list = lazy ? o.choke : o.unchoke
          if (!list.includes(topic)) list.push(topic)
        },
        setTimer: (ms, fn) => this.env.setTimer(ms, fn),
        announceOnly: (peer, topic, lazy) => this.score.setAnnounceOnly(peer, topic, lazy),
        mapsLinks: (topic) => this.marksFlood(topic),
        queueInLinks: (peer, topic, others, rank) => {
          const o = this.pendingOneCopyOf(peer)
          o.inLinks ??= []
          o.inLinks.push({
            topicHash: topicHash(topic),
            peers: others.map((q) => peerHashBytes(this.hashOf(q))),
            rank,
          })
        },
      },
      p.oneCopyMinEager,
      // Source trees: more spare in-links until a topic's first messages came (no tree exists
      // yet, and rule 4's first choice then sees more of the flood's arrivals).
      p.oneCopySourceTrees ? TREE_LEARNING_EXTRA : undefined,
    )
    const pulls = new AnnouncedPulls(
      {
        now: () => this.env.now(),
        setTimer: (ms, fn) => this.env.setTimer(ms, fn),
        have: (short) => shortIndex.has(short),
        incoming: (short) => {
          const key = preambledShort.get(short)
          return key !== undefined && this.preambles.isAwaited(key)
        },
        pull: (peer, topic, short, promote) => this.pull(peer, topic, short, promote),
        unanswered: (peer) => this.unansweredAnnounce(peer),
        // Measured on tree links only: elsewhere the follow-up stays oneCopyFollowupMs.
        rttMs: (peer) => this.treeLinks?.rttMs(peer),
        copyMs: (topic) => this.treeLinks?.copyMs(topic) ?? 0,
      },
      p.oneCopyFollowupMs,
      // Announcers serve INEED from their message cache, which keeps mcacheLength heartbeats.
      p.mcacheLength * p.heartbeatIntervalMs,
      p.maxIWantTracked,
    )
    return {
      roles,
      pulls,
      shortIndex,
      floodReach: new FloodReach(),
      publishedTo: new Set(),
      sentTo: new Map(),
      preambledShort,
      peerHashes: new Map(),
      gossiped: new Map(),
    }
  }

  // ---------------------------------------------------------------- ProtocolCore

  /** Starts the heartbeat. */
  start(): void {
    if (this.running) return
    this.running = true
    this.lastDecay = this.env.now()
    this.heartbeatTimer = this.env.setTimer(this.params.heartbeatInitialDelayMs, () =>
      this.heartbeat(),
    )
  }

  /** Stops the heartbeat and forgets every peer. */
  stop(): void {
    this.running = false
    this.heartbeatTimer?.cancel()
    this.heartbeatTimer = undefined
    this.uplink.clear()
    this.limiter.clear()
    this.oc?.pulls.clear()
    for (const e of this.dontWanted.values()) e.timer?.cancel()
    this.dontWanted.clear()
    this.preambles.clear()
    this.validating.clear()
    for (const peer of [...this.peers.keys()]) this.peerDisconnected(peer)
    this.busyPeers = undefined
    this.pendingCount = 0
    this.pendingOneCopy.clear()
  }

  /** A peer speaking meshsub connected: tell it our subscriptions. */
  peerConnected(peer: PeerKey, info: PeerInfo = {}): void {
    if (this.budgets.isDenied(peer)) {
      // The driver let a denied peer back in (or cannot refuse it): drop it again.
      this.env.disconnect?.(peer, { denyMs: this.budgets.deniedForMs(peer), reason: 'denied' })
      return
    }
    const existing = this.peers.get(peer)
    if (existing !== undefined) {
      if (info.protocol !== undefined) existing.protocol = info.protocol
      return
    }
    this.peers.set(peer, new PeerState(info.protocol, info.outbound ?? false, this.slots.take()))
    this.score.addPeer(peer, info.address)
    this.budgets.addPeer(peer)
    if ((this.params.oneCopy || this.params.preamble) && supportsExtensions(info.protocol)) {
      // meshsub 1.3: the Extensions control message goes in the first frame, once.
      const extensions: RpcExtensions = this.params.preamble
        ? { oneCopy: this.params.oneCopy, preamble: true }
        : { oneCopy: true }
      if (this.treeLinks !== undefined) extensions.sourceTrees = true
      const hello: Rpc = {
        subscriptions: [...this.subscriptions].map((topic) => ({ subscribe: true, topic })),
        messages: [],
        control: { ...emptyControl(), extensions },
      }
      this.sendToMany([peer], hello)
    } else if (this.subscriptions.size > 0) {
      // One encoding shared by every peer that connects until the subscriptions change.
      this.hello ??= encodeRpc({
        subscriptions: [...this.subscriptions].map((topic) => ({ subscribe: true, topic })),
        messages: [],
      })
      this.recorder.frameSent(this.hello.length, 0)
      this.env.send(peer, this.hello)
    }
  }

  /** A peer is gone: drop it from every topic, mesh and fanout. */
  peerDisconnected(peer: PeerKey): void {
    const ps = this.peers.get(peer)
    if (ps === undefined) return
    for (const topic of ps.topics) this.removeTopicPeer(topic, peer)
    ps.upkeep = GONE
    this.peers.delete(peer)
    this.oc?.peerHashes.delete(peer)
    ps.pending = undefined
    this.pendingOneCopy.delete(peer)
    this.limiter.peerGone(peer)
    this.oc?.pulls.peerGone(peer)
    this.treeLinks?.peerGone(peer)
    this.preambles.peerGone(peer)
    this.score.removePeer(peer, ps.slot)
    this.budgets.removePeer(peer, ps.slot)
    this.slots.give(ps.slot)
  }

  /**
   * One RPC frame from `peer`. Never throws: bad input is counted against the peer. Each
   * part of the frame is checked against the peer's budget before it is handled; past a
   * budget the peer is penalised (P7) and the rest of the frame is dropped.
   */
  receive(peer: PeerKey, frame: Uint8Array): void {
    const ps = this.peers.get(peer)
    if (ps === undefined || !this.running) return
    const direct = this.isDirect(peer)
    if (!direct && this.score.belowAt(ps.slot, this.params.thresholds.graylistThreshold)) {
      this.recorder.frameReceived(frame.length, 0)
      this.reject(peer, 'graylisted')
      this.strike(peer, 'graylisted')
      return
    }
    let rpc: Rpc
    const work = this.work
    work.fields = 0
    // A frame big enough to hold more ids than the peer may still spend is decoded within
    // its budgets (a smaller one costs little to decode whole and is checked after).
    const limits =
      !direct && frame.length > BUDGETED_DECODE_BYTES
        ? this.budgetedLimits.of(peer)
        : this.params.rpcLimits
    try {
      rpc = this.decodeRpc(frame, limits, work)
    } catch (err) {
      this.noteWork(work.fields)
      this.recorder.frameReceived(frame.length, 0)
      this.refused(peer, err, limits, frame.length)
      return
    }
    this.noteWork(work.fields)
    this.recorder.frameReceived(frame.length, payloadBytes(rpc))
    this.counts.control(rpc.control, false)
    this.counts.oneCopy(rpc.oneCopy, false)
    const first = !ps.frameSeen
    ps.frameSeen = true
    if (rpc.control?.extensions !== undefined) this.handleExtensions(peer, ps, first, rpc.control)
    if (!this.within(peer, ps, direct, 'subscription', rpc.subscriptions.length)) return
    let rejectedTopics = false
    // Indexed loops: this runs for every frame, and a for-of here allocated an iterator each.
    const subs = rpc.subscriptions
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]
      if (!this.handleSubscription(peer, ps, sub.topic, sub.subscribe) && !rejectedTopics) {
        rejectedTopics = true
        this.reject(peer, 'too-many-topics')
      }
    }
    const c = rpc.control
    // IDONTWANT first, so that it suppresses replies to IWANTs in the same frame.
    if (c !== undefined && !this.handleIDontWant(peer, ps, c.idontwant, direct)) return
    const marks = ps.oneCopy ? rpc.oneCopy?.sentTo : undefined
    if (marks !== undefined && !this.within(peer, ps, direct, 'mark', marks.length)) return
    // Read once per frame: its messages share it (a per-message copy multiplies the hashes).
    this.frameSentTo = sortedHashes(marks)
    this.treeLinks?.frameStart(ps.oneCopy ? rpc.oneCopy?.source : undefined)
    const messages = rpc.messages
    for (let i = 0; i < messages.length; i++) {
      if (!this.handleMessage(peer, ps, messages[i], direct)) {
        this.frameSentTo = undefined
        this.treeLinks?.frameEnd()
        return
      }
    }
    this.frameSentTo = undefined
    this.treeLinks?.frameEnd()
    const o = rpc.oneCopy
    if (o !== undefined) {
      const within = (kind: BudgetKind, n: number) => this.within(peer, ps, direct, kind, n)
      if (!this.handlePreambleMessages(peer, ps, o, within)) return
      if (hasOneCopyMessages(o) && !this.handleOneCopy(peer, ps, o, within)) return
    }
    if (c === undefined) return
    if (!this.within(peer, ps, direct, 'graftPrune', c.graft.length + c.prune.length)) return
    if (!this.within(peer, ps, direct, 'ihave', idCount(c.ihave))) return
    if (!this.within(peer, ps, direct, 'iwant', idCount(c.iwant))) return
    // The reply (PRUNEs, an IWANT) is made only when there is one: most frames need none.
    let out: Rpc | undefined
    if (c.graft.length > 0) {
      out = emptyRpc()
      this.handleGraft(peer, ps, c.graft, out)
    }
    this.handlePrune(peer, c.prune)
    const ask = this.handleIHave(peer, ps, c.ihave)
    if (ask.length > 0) {
      out ??= emptyRpc()
      out.control!.iwant = withEntry(out.control!.iwant, { messageIDs: ask })
    }
    if (out !== undefined && !isRpcEmpty(out)) this.send(peer, out)
    const misses = this.handleIWant(peer, ps, c.iwant, direct)
    this.within(peer, ps, direct, 'iwantMiss', misses)
  }

  /**
   * Takes `n` units of `kind` from the budget of `peer` (in `ps`'s slot); true when granted
   * whole, else the peer is penalised for the rest and false returned (the frame's rest is
   * dropped). Direct peers are trusted by agreement: they are never graylisted nor budgeted.
   */
  private within(
    peer: PeerKey,
    ps: PeerState,
    direct: boolean,
    kind: BudgetKind,
    n: number,
  ): boolean {
    if (direct || n <= 0) return true
    // A peer not yet disconnected holds its slot in the budgets.
    const granted =
      ps.upkeep === GONE ? 0 : this.budgets.takeTracked(ps.slot, kind, n, this.env.now())
    return granted === n || this.overBudget(peer, kind, n - granted)
  }

  /**
   * meshsub 1.3 Extensions: only in a peer's first frame and only once; anything else is a
   * protocol violation, penalised and ignored.
   */
  private handleExtensions(peer: PeerKey, ps: PeerState, first: boolean, c: RpcControl): void {
    const ext = c.extensions!
    if (!first || ps.sentExtensions) {
      this.score.addPenalty(peer, 1)
      this.reject(peer, first ? 'extensions-twice' : 'extensions-late')
      this.strike(peer, 'extensions-misplaced')
      return
    }
    ps.sentExtensions = true
    if (ext.preamble === true && this.params.preamble) ps.preamble = true
    if (ext.oneCopy && this.mayOneCopy(ps) && !ps.oneCopyHeard) {
      ps.oneCopyHeard = true
      if (ext.sourceTrees === true) this.treeLinks?.negotiated(peer, ps)
      this.sendOneCopy(peer, { ...emptyOneCopy(), hello: HELLO_ASK })
    }
  }

  /** True when this node speaks one-copy and the peer's stream can (meshsub 1.3). */
  private mayOneCopy(ps: PeerState): boolean {
    return this.params.oneCopy && supportsExtensions(ps.protocol)
  }

  /**
   * True when this node speaks one-copy and the peer does not (its stream is older than
   * meshsub 1.3, or its Extensions came without one-copy). Its GRAFTs then meet the optimized
   * profile's mesh rules, not stock's: our one-copy meshes run larger than stock's (doc
   * Mesh degree), and taking all of a stock peer's GRAFTs enlarges its mesh and with it the
   * copies it pushes.
   */
  private withoutOneCopy(ps: PeerState): boolean {
    return (
      this.params.oneCopy &&
      (!supportsExtensions(ps.protocol) || (ps.sentExtensions && !ps.oneCopyHeard))
    )
  }

  /**
   * A one-copy hello: the peer speaks one-copy and heard our advertisement, so the link is
   * negotiated (even when the peer's own Extensions was lost on the way). An ASK is answered.
   */
  private handleHello(peer: PeerKey, ps: PeerState, hello: number): void {
    if (!this.mayOneCopy(ps)) return
    ps.oneCopyHeard = true
    ps.oneCopy = true
    if (hello === HELLO_ASK) this.sendOneCopy(peer, { ...emptyOneCopy(), hello: HELLO_ACK })
    else this.treeLinks?.helloAcked(peer)
  }

  /**
   * One-copy messages from `peer`, each kind within its budget; false (rest of the frame
   * dropped) past one. From a peer that did not negotiate the extension they are ignored.
   */
  private handleOneCopy(
    peer: PeerKey,
    ps: PeerState,
    o: RpcOneCopy,
    within: (kind: BudgetKind, n: number) => boolean,
  ): boolean {
    // Distance groups go to the `distance` budget with their entries (an honest node sends
    // them every 10 ms while its trees settle), not here.
    const roles =
      o.choke.length +
      o.unchoke.length +
      (o.inLinks?.length ?? 0) +
      (o.ping === undefined ? 0 : 1) +
      (o.pong === undefined ? 0 : 1)
    if (!within('choke', roles + (o.hello === undefined ? 0 : 1))) return false
    if (o.hello !== undefined) this.handleHello(peer, ps, o.hello)
    // A peer heard only by a node running one-copy (`oc` is there then).
    const oc = this.oc
    if (oc === undefined || !ps.oneCopyHeard) {
      this.reject(peer, 'one-copy-not-negotiated')
      return true
    }
    if (!this.handleTreeMessages(peer, ps, o, within)) return false
    if (!within('announce', announcedIdCount(o.announce))) return false
    if (!within('ineed', o.ineed.length)) return false
    for (const topic of o.choke) oc.roles.peerAsked(topic, peer, true)
    for (const topic of o.unchoke) oc.roles.peerAsked(topic, peer, false)
    for (const l of o.inLinks ?? []) {
      const topic = this.topicByHash.get(bytesKey(l.topicHash))
      if (topic === undefined) continue
      oc.roles.peerToldInLinks(topic, peer, { peers: l.peers.map(peerHashOf), rank: l.rank })
    }
    announces: for (const a of o.announce) {
      const topic = this.topicByHash.get(bytesKey(a.topicHash))
      if (topic === undefined) continue
      const inMesh = this.meshes.meshOf(topic)?.has(peer) === true
      // A peer told our in-links announces flood-marked messages over eager links by design
      // (rule 2): not a lost UNCHOKE, and a mesh delivery (P3) like the push it replaces.
      // So do source-tree peers (those that answer our pings) to us where we are not their child.
      const byDesign =
        inMesh &&
        (oc.roles.toldInLinksTo(topic, peer) || this.treeLinks?.treePeer(peer, ps) === true)
      const marked = a.ids.every((id) => oc.sentTo.has(oc.shortIndex.get(bytesKey(id)) ?? ''))
      if (inMesh && !marked && !byDesign) oc.roles.announcedBy(topic, peer)
      const eagerIn = inMesh && !oc.roles.announcesToUs(topic, peer)
      for (const id of a.ids) {
        const short = bytesKey(id)
        const known = oc.shortIndex.get(short)
        if (known !== undefined) {
          // It has the message too: our forward, if still pending, skips it.
          this.validating.get(known)?.add(peer)
          this.treeLinks?.duplicate(peer, topic, known)
          if (inMesh) oc.roles.arrivedLate(topic, known, peer, this.env.now(), false)
          const first = this.mcache.get(known)?.firstSeen
          if (eagerIn && first !== undefined && (byDesign || oc.sentTo.has(known))) {
            this.score.duplicateDelivery(peer, topic, this.env.now() - first)
          }
          continue
        }
        if (this.treeLinks?.isOwn(short)) continue
        const delayMs = inMesh ? this.params.oneCopyPullDelayMs : 0
        if (!oc.pulls.announced(peer, topic, id, short, delayMs)) {
          // Its announces opened their share of undelivered messages (honest ones open a few):
          // the frame's other announced ids are not read, and it is counted.
          this.reject(peer, 'announce-over-pull-share', topic)
          break announces
        }
      }
    }
    let misses = 0
    for (const id of o.ineed) {
      const key = oc.shortIndex.get(bytesKey(id))
      const cached =
        key === undefined
          ? undefined
          : this.mcache.getForPeer(
              key,
              peer,
              Math.max(this.params.gossipRetransmission, MAX_PULL_ASKS),
            )
      if (cached === undefined) misses++
      else {
        // A pulled copy carries the flood mark as a pushed one does (rule 2): without it the
        // puller would push to the nodes the publisher's flood already reached.
        this.sendMarked([peer], cached.message, key!, oc.sentTo.get(key!)?.peers)
      }
    }
    return within('iwantMiss', misses)
  }

  /**
   * Source-tree messages from `peer` (ping, pong, distance entries), each entry charged to its
   * `distance` budget before it is read; false (rest of the frame dropped) past it.
   */
  private handleTreeMessages(
    peer: PeerKey,
    ps: PeerState,
    o: RpcOneCopy,
    within: (kind: BudgetKind, n: number) => boolean,
  ): boolean {
    // Each group costs one as an entry does: empty groups are no free ride.
    const n = distanceCost(o)
    if (n > 0 && !within('distance', n)) return false
    if (o.ping === undefined && o.pong === undefined && n === 0) return true
    // Without trees we never said we run them (our Extensions had no `sourceTrees`).
    if (this.treeLinks === undefined) this.reject(peer, 'source-trees-not-negotiated')
    else this.treeLinks.received(peer, ps, o)
    return true
  }

  /** Pulls an announced message; a lazy mesh link it came over turns eager (UNCHOKE). */
  private pull(peer: PeerKey, topic: Topic, short: Uint8Array, promote: boolean): void {
    if (!this.peers.has(peer)) return
    const o = emptyOneCopy()
    o.ineed.push(short)
    if (promote && this.meshes.meshOf(topic)?.has(peer) && this.oc?.roles.pulling(topic, peer)) {
      o.unchoke.push(topic)
    }
    this.sendOneCopy(peer, o)
  }

  /**
   * Preamble extension messages from `peer`, within its budgets (IMRECEIVING ids as
   * IDONTWANT ids, PREAMBLEs as announces); false (rest of the frame dropped) past one. From
   * a peer that did not negotiate the extension they are ignored and counted.
   */
  private handlePreambleMessages(
    peer: PeerKey,
    ps: PeerState,
    o: RpcOneCopy,
    within: (kind: BudgetKind, n: number) => boolean,
  ): boolean {
    const preambles = o.preamble ?? []
    const receiving = o.imreceiving ?? []
    if (preambles.length === 0 && receiving.length === 0) return true
    if (!ps.preamble) {
      this.reject(peer, 'preamble-not-negotiated')
      return true
    }
    if (!within('idontwant', receiving.length)) return false
    for (const id of receiving) this.preambles.peerReceiving(peer, messageIdKey(id))
    if (!within('announce', preambles.length)) return false
    for (const p of preambles) this.handlePreamble(peer, ps, p)
    return true
  }

  /**
   * A PREAMBLE: its sender has the message (we send it no copy); the message is awaited, and
   * our other peers told IMRECEIVING, unless known.
   */
  private handlePreamble(peer: PeerKey, ps: PeerState, p: RpcPreamble): void {
    const topic = this.topicByHash.get(bytesKey(p.topicHash))
    // Not one of our topics: its message would be dropped unread, nothing to hold back.
    if (topic === undefined) return
    if (p.size < this.params.preambleMinDataSize || p.size > this.params.maxMessageSize) {
      this.reject(peer, 'bad-preamble', topic)
      return
    }
    const key = messageIdKey(p.messageID)
    const now = this.env.now()
    if (this.seen.has(key, now)) return
    // Before `announced`: an overdue message is not pulled from the peer that broke its preamble.
    if (!this.preambles.isOverdue(key)) {
      this.peerHas(peer, ps, key, p.messageID, now + this.params.idontwantTtlMs)
    }
    const verdict = this.preambles.announced(peer, key, p.messageID, p.size)
    if (verdict === 'full') this.reject(peer, 'preamble-over-limit', topic)
    else if (verdict === 'new') {
      this.sendImReceiving(topic, p.messageID, key, peer)
      if (this.oc !== undefined)
        setNewest(
          this.oc.preambledShort,
          bytesKey(shortId(p.messageID)),
          key,
          this.params.maxPreambles,
        )
    }
  }

  /**
   * IMRECEIVING to the extension peers that would send us the message (those IDONTWANT goes
   * to), so that their copies wait. Stock peers are not told: their IDONTWANT also refuses
   * our IWANT, which a broken PREAMBLE needs (doc/gossip-extension.md).
   */
  private sendImReceiving(topic: Topic, id: MessageId, key: string, from: PeerKey): void {
    const to = this.noticeTargets(topic, from, this.limiter.outstandingPeers(key)).filter(
      (p) => this.peers.get(p)?.preamble === true,
    )
    if (to.length === 0) return
    this.sendToMany(to, {
      subscriptions: [],
      messages: [],
      oneCopy: { ...emptyOneCopy(), imreceiving: [id] },
    })
  }

  /** A PREAMBLE to `peer` before the large message `key` leaves for it, if it speaks the extension. */
  private preambleTo(peer: PeerKey, key: string, size: number): void {
    if (!this.params.preamble || size < this.params.preambleMinDataSize) return
    if (this.peers.get(peer)?.preamble !== true) return
    const entry = this.mcache.get(key)
    if (entry === undefined) return
    const o = emptyOneCopy()
    o.preamble = [{ messageID: entry.id, topicHash: topicHash(entry.topic), size }]
    this.sendOneCopy(peer, o)
  }

  /**
   * A preambled message did not come in time: its sender (unless it went away) is penalised
   * as for a broken IWANT promise, and the message is pulled from the peers that said they
   * have it (IDONTWANT); one that says so later is asked then.
   */
  private preambleOverdue(key: string, id: MessageId, sender: PeerKey | undefined): void {
    if (sender !== undefined) {
      this.score.addPenalty(sender, 1)
      this.recorder.penalise(sender, 'broken-preamble')
    }
    for (const [p, ps] of this.peers) {
      if (p !== sender && this.dontWantOf(ps, key)) this.pullFrom(p, key, id)
    }
  }

  private pullFrom(peer: PeerKey, key: string, id: MessageId): void {
    const ask = this.limiter.advertised(peer, [{ key, id }])
    if (ask.length > 0) this.send(peer, { ...emptyRpc(), control: iwant(ask) })
  }

  /**
   * A duplicate from a one-copy peer: one we asked it for frees its pull entry's share; one
   * pushed over a mesh link, unless asked for or flood published, may choke it (LinkRoles).
   */
  private chokeOnDuplicate(
    oc: OneCopyState,
    peer: PeerKey,
    topic: Topic,
    key: string,
    short: string,
  ): void {
    oc.pulls.answeredKnown(short, peer)
    if (!this.meshes.meshOf(topic)?.has(peer)) return
    oc.roles.arrivedLate(topic, key, peer, this.env.now(), true)
    // The first copy came straight from its publisher (flood publish): the mesh link is still
    // the way every other message comes.
    if (this.floodRoot(key)) return
    if (oc.pulls.askedOf(short, peer)) return
    // A source with a tree: pushes follow its parent bits, not the topic's roles.
    if (this.treeLinks?.inTree(topic, key)) return
    oc.roles.duplicate(topic, peer)
  }

  /**
   * True when `peer` speaks one-copy and gets the message `flooded` marks from elsewhere, so
   * we announce it instead of pushing it (rule 2): its publisher sent it to `peer`, or to an
   * eager in-link of `peer` that `peer` ranks before us (the first such pushes; we are lazy:
   * any of them). A tree child (`treeChild`) takes the source's messages through us alone:
   * only the flood itself covers it, not the in-links it keeps for other sources.
   */
  private covered(
    topic: Topic,
    peer: PeerKey,
    flooded: FloodMark | undefined,
    treeChild = false,
  ): boolean {
    if (flooded === undefined || this.peers.get(peer)?.oneCopy !== true) return false
    if (hasHash(flooded.peers, this.hashOf(peer))) return true
    if (treeChild) return false
    const links = this.oc?.roles.inLinksOf(topic, peer)
    if (links === undefined) return false
    const first = links.peers.findIndex((h) => hasHash(flooded.peers, h))
    if (first < 0) return false
    // We reached it straight from the publisher too, and rank first of those that did.
    return !(flooded.direct && links.rank !== undefined && links.rank <= first)
  }

  /** `peer`'s hash (one-copy `sentTo`, `inLinks`), hashed once while it is connected. */
  private hashOf(peer: PeerKey): number {
    let h = this.oc?.peerHashes.get(peer)
    if (h === undefined) {
      h = peerHash(peer)
      if (this.peers.has(peer)) this.oc?.peerHashes.set(peer, h)
    }
    return h
  }

  /** True when `topic`'s flood reaches far enough to be marked (`sentTo`, rule 2). */
  private marksFlood(topic: Topic): boolean {
    const mesh = this.meshes.meshOf(topic)
    const topicPeers = this.topicPeers.get(topic)?.size ?? 0
    return (
      mesh !== undefined && this.oc?.floodReach.marksFlood(topic, topicPeers, mesh.size) === true
    )
  }

  /** True when the first copy of `key` came straight from its publisher's flood (outside the mesh). */
  private floodRoot(key: string): boolean {
    return this.params.oneCopyFloodPublish && this.oc?.publishedTo.has(key) === true
  }

  /** True when `peer` asked us to announce `topic`'s messages to it instead of pushing them. */
  private isLazyLink(topic: Topic, peer: PeerKey): boolean {
    return this.oc?.roles.announcesTo(topic, peer) === true
  }

  /** Announces one message to `peers` (lazy one-copy links), one encoding for all. */
  private announce(peers: PeerKey[], topic: Topic, short: Uint8Array): void {
    if (peers.length === 0) return
    const o = emptyOneCopy()
    o.announce.push({ topicHash: topicHash(topic), ids: [short] })
    this.sendToMany(peers, { subscriptions: [], messages: [], oneCopy: o })
  }

  /** Heartbeat gossip: compact announces to one-copy peers, IHAVE to the others. */
  private gossipTo(peer: PeerKey, topic: Topic, ids: MessageId[]): void {
    // A node without one-copy has no one-copy links: no lookup of the peer (a cache miss each).
    const oc = this.oc
    if (oc === undefined || this.peers.get(peer)?.oneCopy !== true) {
      const c = this.control(peer)
      // Usually the peer's only IHAVE: an array of one (a 72,000-node heartbeat gossips to
      // ~700,000 peers).
      c.ihave = withEntry(c.ihave, { topicID: topic, messageIDs: ids })
      return
    }
    // Lazy mesh links announce every message as it comes: gossip only repeats the last
    // heartbeat's, to a few peers, for peers outside the mesh and links that lost an announce.
    const sent = oc.gossiped.get(topic) ?? 0
    if (sent >= this.params.oneCopyGossipPeers) return
    const since = this.env.now() - this.params.heartbeatIntervalMs
    const recent = ids.filter((id) => (this.mcache.get(messageIdKey(id))?.firstSeen ?? 0) >= since)
    if (recent.length === 0) return
    oc.gossiped.set(topic, sent + 1)
    this.pendingOneCopyOf(peer).announce.push({
      topicHash: topicHash(topic),
      ids: recent.map((id) => shortId(id)),
    })
  }

  /**
   * A message's first copy came from `peer`: the mesh peer whose copy or announce came first
   * is credited (eager in-links are chosen by these credits at each heartbeat).
   */
  private firstCopy(
    oc: OneCopyState,
    peer: PeerKey,
    topic: Topic,
    key: string,
    short: string,
    origin: PeerKey | undefined,
  ): void {
    if (this.frameSentTo !== undefined) {
      if (oc.sentTo.size >= MAX_SENT_TO) oc.sentTo.delete(oc.sentTo.keys().next().value!)
      oc.sentTo.set(key, {
        peers: this.frameSentTo,
        direct: origin !== undefined && origin === peer,
      })
    }
    const mesh = this.meshes.meshOf(topic)
    oc.floodReach.arrived(
      topic,
      mesh !== undefined && !mesh.has(peer),
      origin === undefined ? undefined : origin === peer,
    )
    if (!mesh?.has(peer)) {
      if (oc.publishedTo.size >= this.params.maxShortIds) {
        const oldest = oc.publishedTo.values().next().value
        if (oldest !== undefined) oc.publishedTo.delete(oldest)
      }
      oc.publishedTo.add(key)
    }
    const now = this.env.now()
    const came: [PeerKey, number][] = [...(this.indexShortId(oc, key, short, peer) ?? [])]
    if (mesh?.has(peer)) {
      came.push([peer, now])
      oc.roles.pushedFirst(topic, peer)
    }
    oc.roles.arrived(topic, key, now, mesh === undefined ? [] : came.filter(([p]) => mesh.has(p)))
  }

  /**
   * Remembers a new message's short id (`short`, its {@link bytesKey}; bounded, oldest
   * forgotten first).
   */
  private indexShortId(
    oc: OneCopyState,
    key: string,
    short: string,
    from?: PeerKey,
  ): ReadonlyMap<PeerKey, number> | undefined {
    setNewest(oc.shortIndex, short, key, this.params.maxShortIds)
    return oc.pulls.delivered(short, from)
  }

  /** One-copy messages waiting for the heartbeat's control frame to `peer`. */
  private pendingOneCopyOf(peer: PeerKey): RpcOneCopy {
    let o = this.pendingOneCopy.get(peer)
    if (o === undefined) {
      o = emptyOneCopy()
      this.pendingOneCopy.set(peer, o)
    }
    return o
  }

  private sendOneCopy(peer: PeerKey, o: RpcOneCopy): void {
    this.sendToMany([peer], { subscriptions: [], messages: [], oneCopy: o })
  }

  /** The driver caught `peer` misbehaving below the core (bad framing): count and score it. */
  override penalise(peer: PeerKey, reason: string): void {
    this.score.addPenalty(peer, 1)
    super.penalise(peer, reason)
    this.strike(peer, reason, this.params.budgets.malformedStrikes)
  }

  /**
   * The first bytes of a large frame from `peer`, still arriving (the driver shows them before
   * buffering the rest): false when the first bytes alone cross a decode limit or the peer's
   * remaining id budgets (as {@link receive} decodes a large frame), so that the whole frame
   * would be refused. The peer is then counted as for that frame (strikes by its declared
   * length) and the driver drops it: a hostile 4 MiB frame costs its first kilobytes.
   */
  inspectFramePrefix(peer: PeerKey, prefix: Uint8Array, frameLength: number): boolean {
    // A peer not heard of yet (its frames wait for our stream to it) has no budgets yet.
    const budgeted = this.running && this.peers.has(peer) && !this.isDirect(peer)
    const limits = budgeted ? this.budgetedLimits.of(peer) : this.params.rpcLimits
    try {
      checkRpcPrefix(prefix, frameLength, limits)
      return true
    } catch (err) {
      this.refused(peer, err, limits, frameLength)
      return false
    }
  }

  /**
   * A frame of `bytes` bytes from `peer` that decoding with `limits` refused: over the id
   * budget those limits held it to, or malformed.
   */
  private refused(peer: PeerKey, err: unknown, limits: RpcLimits, bytes: number): void {
    const kind = this.budgetedLimits.overBudget(err, limits)
    if (kind === undefined) {
      this.malformed(peer, err, bytes)
      return
    }
    // Spent as an over-budget frame decoded whole would have been: the bucket empties.
    const granted = this.budgets.take(peer, kind, Number.POSITIVE_INFINITY)
    this.overBudget(peer, kind, estimatedIds(bytes) - granted)
  }

  /**
   * A frame of `bytes` bytes from `peer` failed to decode (or crossed a limit): penalised,
   * and strikes by its size.
   */
  private malformed(peer: PeerKey, err: unknown, bytes: number): void {
    this.log('malformed frame from %s: %s', peer, (err as Error).message)
    this.score.addPenalty(peer, 1)
    this.reject(peer, 'malformed-frame')
    this.strike(peer, 'malformed-frame', this.budgets.malformedStrikes(bytes))
  }

  /** The driver saw `peer` open an inbound stream: reopening one is budgeted. */
  inboundStreamOpened(peer: PeerKey): void {
    // The first stream usually comes before the core hears of the peer: only later ones count.
    if (!this.budgets.has(peer) || this.isDirect(peer)) return
    if (!this.budgets.spend(peer, 'stream', 1)) this.overBudget(peer, 'stream', 1)
  }

  /**
   * Penalises a peer that asked `excess` units of `kind` past its budget (P7 once, strikes by
   * how far over it went); returns false (the frame's rest is dropped).
   */
  private overBudget(peer: PeerKey, kind: BudgetKind, excess: number): false {
    this.score.addPenalty(peer, 1)
    this.reject(peer, `${kind}-over-budget`)
    this.strike(peer, `${kind}-over-budget`, this.budgets.overdraftStrikes(kind, excess))
    return false
  }

  /** Counts a strike; a peer that reaches the limit is disconnected and denied. */
  private strike(peer: PeerKey, reason: string, weight = 1): void {
    if (this.isDirect(peer) || !this.budgets.strike(peer, weight)) return
    const until = this.budgets.deny(peer)
    this.peersDisconnected++
    this.log('disconnecting %s until %d: %s', peer, until, reason)
    this.reject(peer, 'disconnected')
    this.peerDisconnected(peer)
    this.env.disconnect?.(peer, { denyMs: this.params.budgets.denyMs, reason })
  }

  private noteWork(fields: number): void {
    if (fields > this.maxFieldsPerFrame) this.maxFieldsPerFrame = fields
  }

  // ---------------------------------------------------------------- Dissemination

  /** Joins `topic`: announces it and builds a mesh (from fanout peers first). */
  subscribe(topic: Topic): void {
    if (this.subscriptions.has(topic)) return
    this.subscriptions.add(topic)
    this.topicByHash.set(bytesKey(topicHash(topic)), topic)
    this.hello = undefined
    // One frame for every peer, encoded once.
    this.sendToMany([...this.peers.keys()], {
      subscriptions: [{ subscribe: true, topic }],
      messages: [],
    })
    this.meshes.join(topic)
    this.flushControl()
  }

  /** Leaves `topic`: announces it and prunes the mesh with the unsubscribe backoff. */
  unsubscribe(topic: Topic): void {
    if (!this.subscriptions.delete(topic)) return
    this.topicByHash.delete(bytesKey(topicHash(topic)))
    this.hello = undefined
    this.sendToMany([...this.peers.keys()], {
      subscriptions: [{ subscribe: false, topic }],
      messages: [],
    })
    this.meshes.leave(topic)
    this.oc?.roles.clearTopic(topic)
    this.treeLinks?.clearTopic(topic)
    this.oc?.floodReach.clearTopic(topic)
    this.flushControl()
  }

  /** The subscribed topics. */
  getTopics(): Topic[] {
    return [...this.subscriptions]
  }

  /**
   * Publishes `data` on `topic`. Consensus messages go to the mesh (or, with flood publish,
   * every topic peer); ingress messages go to every topic peer and stop there.
   */
  publish(topic: Topic, data: Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    try {
      if (!this.running) throw new NotStartedError('gossip router')
      if (data.length > this.params.maxMessageSize) {
        throw new MessageTooLargeError(data.length, this.params.maxMessageSize)
      }
      const cls = options.class ?? this.classOf(topic)
      const built = this.signer?.sign(topic, data) ?? { topic, data }
      if (built instanceof Promise) return built.then((m) => this.publishMessage(m, cls))
      return Promise.resolve(this.publishMessage(built, cls))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Declares the artifact class of a topic (every node of the network must agree). */
  setTopicClass(topic: Topic, cls: ArtifactClass): void {
    this.classes.set(topic, cls)
  }

  // ---------------------------------------------------------------- inspection

  /** Connected meshsub peers. */
  getPeers(): PeerKey[] {
    return [...this.peers.keys()]
  }

  /** Peers known to subscribe to `topic`. */
  getTopicPeers(topic: Topic): PeerKey[] {
    return [...(this.topicPeers.get(topic) ?? [])]
  }

  /** Heartbeats run since start (nothing else marks them; tests wait on it). */
  getHeartbeatCount(): number {
    return this.meshes.heartbeats
  }

  /** Our mesh peers of `topic`. */
  getMeshPeers(topic: Topic): PeerKey[] {
    return [...(this.meshes.meshOf(topic) ?? [])]
  }

  /** Our fanout peers of `topic`. */
  getFanoutPeers(topic: Topic): PeerKey[] {
    return [...(this.meshes.fanoutOf(topic) ?? [])]
  }

  /** A peer's current score. */
  getPeerScore(peer: PeerKey): number {
    return this.score.score(peer)
  }

  /** A peer's behaviour penalty counter (P7, before weighting). */
  getBehaviourPenalty(peer: PeerKey): number {
    return this.score.behaviourPenalty(peer)
  }

  /** IDONTWANT ids held for `peer` (bounded by its budget and `maxIDontWantPerPeer`). */
  getIDontWantCount(peer: PeerKey): number {
    return this.peers.get(peer)?.dontWant?.size ?? 0
  }

  /** One-copy source trees: sources held for `topic` (at most `oneCopyMaxSources`). */
  getSourceCount(topic: Topic): number {
    return this.treeLinks?.size(topic) ?? 0
  }

  /** One-copy source trees: our distance from `source` (a peer hash) in `topic`, ms; Infinity unknown. */
  getSourceDistance(topic: Topic, source: number): number {
    return this.treeLinks?.distanceOf(topic, source) ?? Number.POSITIVE_INFINITY
  }

  /**
   * One-copy flood marks held (`sentTo`, rule 2): marked messages (at most 256) and the peer
   * hashes kept for them, a list shared by one frame's messages counted once.
   */
  getFloodMarkCount(): { messages: number; peerHashes: number } {
    const lists = new Set<Uint32Array>()
    for (const m of this.oc?.sentTo.values() ?? []) lists.add(m.peers)
    let peerHashes = 0
    for (const l of lists) peerHashes += l.length
    return { messages: this.oc?.sentTo.size ?? 0, peerHashes }
  }

  /** True while `peer` is denied after being disconnected for going on past its budgets. */
  isDenied(peer: PeerKey): boolean {
    return this.budgets.isDenied(peer)
  }

  /** True when `peer` and this node both speak the preamble extension (meshsub 1.3). */
  speaksPreamble(peer: PeerKey): boolean {
    return this.peers.get(peer)?.preamble === true
  }

  /** Preambled messages awaited now (bounded by `maxPreambles`, `maxPreamblesPerPeer` per peer). */
  getAwaitedPreambleCount(): number {
    return this.preambles.size
  }

  /**
   * The one-way latency to `peer` that per-source trees use (half the link's base RTT), ms;
   * undefined without trees or before the link's first sample.
   */
  getLinkLatency(peer: PeerKey): number | undefined {
    return this.treeLinks?.latencyMs(peer)
  }

  /** True when `peer` and this node both speak the one-copy extension (meshsub 1.3). */
  speaksOneCopy(peer: PeerKey): boolean {
    return this.peers.get(peer)?.oneCopy === true
  }

  /**
   * How a copy of message `id` from `peer` on `topic` would be classed by the one-copy rules now
   * (for benchmarks that trace where duplicates come from): whether `peer` is in our mesh,
   * whether we hold its in-link lazy (we sent CHOKE) and it holds ours lazy (it sent CHOKE),
   * whether we asked it for the message (INEED), whether our first copy came straight from the
   * publisher's flood (we are a flood root), and whether the message carries a flood mark.
   */
  describeCopy(
    topic: Topic,
    peer: PeerKey,
    id: MessageId,
  ): {
    inMesh: boolean
    lazyIn: boolean
    lazyOut: boolean
    asked: boolean
    floodRoot: boolean
    marked: boolean
  } {
    const key = messageIdKey(id)
    return {
      inMesh: this.meshes.meshOf(topic)?.has(peer) === true,
      lazyIn: this.oc?.roles.announcesToUs(topic, peer) === true,
      lazyOut: this.oc?.roles.announcesTo(topic, peer) === true,
      asked: this.oc?.pulls.askedOf(bytesKey(shortId(id)), peer) === true,
      floodRoot: this.floodRoot(key),
      marked: this.oc?.sentTo.has(key) === true,
    }
  }

  /** Lazy (announce-only) one-copy links of our mesh of `topic`. */
  getLazyLinkCount(topic: Topic): number {
    return this.oc?.roles.lazyInLinks(topic) ?? 0
  }

  /** The protocol a peer negotiated, if the driver said. */
  getPeerProtocol(peer: PeerKey): string | undefined {
    return this.peers.get(peer)?.protocol
  }

  /** The artifact class of a topic. */
  classOf(topic: Topic): ArtifactClass {
    return this.classes.get(topic) ?? this.params.defaultClass
  }

  // ---------------------------------------------------------------- receiving

  private handleSubscription(peer: PeerKey, ps: PeerState, topic: Topic, on: boolean): boolean {
    if (topic === '') return true
    if (on) {
      if (ps.topics.has(topic)) return true
      if (ps.topics.size >= this.params.maxTopicsPerPeer) return false
      ps.topics.add(topic)
      let set = this.topicPeers.get(topic)
      if (set === undefined) {
        set = new Set()
        this.topicPeers.set(topic, set)
      }
      set.add(peer)
    } else if (ps.topics.delete(topic)) {
      this.removeTopicPeer(topic, peer)
    }
    return true
  }

  private removeTopicPeer(topic: Topic, peer: PeerKey): void {
    const set = this.topicPeers.get(topic)
    set?.delete(peer)
    if (set?.size === 0) this.topicPeers.delete(topic)
    this.meshes.removePeer(topic, peer)
  }

  /**
   * Handles one received message; false when the peer repeated a message past its budget
   * (the rest of the frame is then dropped).
   */
  private handleMessage(peer: PeerKey, ps: PeerState, m: RpcMessage, direct: boolean): boolean {
    const topic = m.topic
    if (topic === '') {
      this.reject(peer, 'missing-topic')
      return true
    }
    // Like stock gossipsub, messages of topics we do not subscribe to are dropped unread.
    if (!this.subscriptions.has(topic)) return true
    const cls = this.classOf(topic)
    const data = m.data ?? EMPTY
    if (data.length > this.params.maxMessageSize) {
      this.invalid(peer, topic, cls, 'message-too-large')
      return true
    }
    const auth = checkAuthFields(this.params.signaturePolicy, m)
    if (auth.problem !== undefined) {
      this.invalid(peer, topic, cls, auth.problem)
      return true
    }
    let id: MessageId
    try {
      id = this.msgIdFn(m)
    } catch {
      this.invalid(peer, topic, cls, 'bad-message-id')
      return true
    }
    const key = messageIdKey(id)
    const now = this.env.now()
    const fresh = this.noteReceived(ps, key)
    const oc = this.oc
    // One-copy's key of the message's short id (a SHA-256): made once, where first needed.
    let short = !fresh && oc !== undefined ? bytesKey(shortId(id)) : undefined
    // A copy we asked for (INEED) is a reply, not a repeat: the peer is not charged for it.
    const repeated = !fresh && !(short !== undefined && oc?.pulls.askedOf(short, peer))
    if (repeated && !direct && !this.budgets.spend(peer, 'repeat', 1)) {
      return this.overBudget(peer, 'repeat', 1)
    }
    if (this.seen.has(key, now)) {
      this.recorder.count('duplicates', topic, cls)
      const first = this.mcache.get(key)?.firstSeen
      if (first !== undefined) this.score.duplicateDelivery(peer, topic, now - first)
      this.events.emit('duplicate', { id, topic, class: cls, from: peer, receivedAt: now })
      this.treeLinks?.duplicate(peer, topic, key)
      this.validating.get(key)?.add(peer)
      if (ps.oneCopy && oc !== undefined)
        this.chokeOnDuplicate(oc, peer, topic, key, short ?? bytesKey(shortId(id)))
      return true
    }
    this.seen.add(key, now)
    this.preambles.delivered(key, peer)
    if (oc !== undefined) {
      short ??= bytesKey(shortId(id))
      this.firstCopy(oc, peer, topic, key, short, auth.origin)
    }
    this.treeLinks?.arrived(
      peer,
      topic,
      key,
      auth.origin,
      data.length,
      short === undefined ? undefined : oc?.pulls.announcers(short),
    )
    const asked = this.limiter.outstandingPeers(key)
    this.limiter.delivered(key)
    if (this.params.idontwant && data.length >= this.params.idontwantMinDataSize) {
      this.sendIDontWant(topic, cls, id, peer, asked)
    }
    const artifact: Artifact = {
      id,
      topic,
      data,
      class: cls,
      from: peer,
      origin: auth.origin,
      receivedAt: now,
    }
    if (this.validating.size < this.params.maxPendingValidations) {
      this.validating.set(key, new Set())
    }
    const fail = (reason: string) => (err: unknown) => {
      this.validating.delete(key)
      this.log.error('%s of %s failed: %e', reason, key, err)
    }
    const validate = () => {
      const validator = this.validators.get(topic)
      if (validator === undefined) {
        this.accepted(peer, m, key, artifact)
        return
      }
      let verdict: ValidationResult | Promise<ValidationResult>
      try {
        verdict = validator(artifact)
      } catch (err) {
        fail('validation')(err)
        verdict = 'ignore'
      }
      settle(verdict, (v) => this.validated(peer, m, key, artifact, v), fail('validation'))
    }
    const check = () => {
      if (auth.key === undefined) {
        validate()
        return
      }
      settle(
        verifySignature(m, auth.key),
        (ok) => {
          if (!this.running) return
          if (ok) validate()
          else {
            this.validating.delete(key)
            this.invalid(peer, topic, cls, 'bad-signature')
          }
        },
        fail('signature check'),
      )
    }
    // A timer, not a promise: the simulator runs timers, and the delay is the node's CPU time.
    const delay =
      this.params.validationDelayMs + (this.params.validationDelayMsPerKB * data.length) / 1000
    if (delay > 0) {
      this.env.setTimer(delay, () => {
        if (this.running) check()
      })
    } else {
      check()
    }
    return true
  }

  /** Remembers that `ps` sent the message `key`; false when it had sent it already. */
  private noteReceived(ps: PeerState, key: string): boolean {
    // A small set: a Set costs ~180 bytes even with one key, and a 72,000-node simulation
    // holds one for each of its ~600,000 mesh links that carried a message.
    ps.recentReceived ??= new SmallSet()
    if (ps.recentReceived.has(key)) return false
    if (ps.recentReceived.size >= MAX_RECENT_RECEIVED) {
      const oldest = ps.recentReceived.first()
      if (oldest !== undefined) ps.recentReceived.delete(oldest)
    }
    ps.recentReceived.add(key)
    return true
  }

  private validated(
    peer: PeerKey,
    m: RpcMessage,
    key: string,
    a: Artifact,
    verdict: ValidationResult,
  ): void {
    if (!this.running) return
    if (verdict === 'accept') {
      this.accepted(peer, m, key, a)
      return
    }
    this.validating.delete(key)
    if (verdict === 'reject') this.invalid(peer, a.topic, a.class, 'validation-rejected')
    else this.recorder.count('ignored', a.topic, a.class)
  }

  private accepted(peer: PeerKey, m: RpcMessage, key: string, a: Artifact): void {
    const haveIt = this.validating.get(key)
    this.validating.delete(key)
    this.score.firstDelivery(peer, a.topic)
    const forwarded = this.forwards(a.class)
    if (forwarded) {
      this.mcache.put(key, {
        id: a.id,
        message: m,
        topic: a.topic,
        class: a.class,
        advertise: true,
        firstSeen: a.receivedAt,
      })
      const targets: PeerKey[] = []
      const lazy: PeerKey[] = []
      const oc = this.oc
      const short = oc === undefined ? undefined : shortId(a.id)
      const announced = short && oc?.pulls.announcers(bytesKey(short))
      const mesh = this.meshes.meshOf(a.topic)
      // A source with a tree: push to the peers that take it through us, announce to the
      // other mesh peers (the safety net of rules 5-9); peers that sent no entry for it
      // follow rules 1-9.
      const source = this.treeLinks?.sourceOf(key)
      let tree = source === undefined ? undefined : this.treeLinks?.entries(a.topic, source)
      // None of the mesh told us of the source yet: rules 1-9 whole (root pushes included).
      if (tree?.size === 0) tree = undefined
      const skip = (p: PeerKey) =>
        p === peer ||
        p === a.origin ||
        (source !== undefined && this.hashOf(p) === source) ||
        haveIt?.has(p) === true ||
        announced?.has(p) === true ||
        this.peerDoesNotWant(p, key)
      for (const p of mesh ?? []) {
        if (skip(p)) continue
        const entry = tree?.get(p)
        if (entry === undefined) {
          if (this.isLazyLink(a.topic, p)) lazy.push(p)
          else targets.push(p)
        } else if (entry.namesUs) targets.push(p)
        else lazy.push(p)
      }
      // A child whose GRAFT we have not handled (or whose PRUNE it has not) is pushed to too:
      // it waits for our copy alone.
      for (const [p, entry] of tree ?? []) {
        if (entry.namesUs && !mesh?.has(p) && this.peers.has(p) && !skip(p)) targets.push(p)
      }
      const flooded = oc?.sentTo.get(key)
      if (flooded !== undefined) {
        for (let i = targets.length - 1; i >= 0; i--) {
          const p = targets[i]
          if (this.covered(a.topic, p, flooded, tree?.get(p)?.namesUs === true)) {
            lazy.push(...targets.splice(i, 1))
          }
        }
      }
      if (oc !== undefined && this.floodRoot(key) && mesh !== undefined && tree === undefined) {
        // A copy straight from its publisher's flood goes further than the eager links, as
        // far as the flood's reach says it adds nodes (one-copy rule 2).
        const topicPeers = this.topicPeers.get(a.topic)?.size ?? 0
        let more = oc.floodReach.rootPushes(a.topic, topicPeers, mesh.size) - targets.length
        for (let i = 0; i < lazy.length && more > 0; ) {
          if (this.covered(a.topic, lazy[i], flooded)) i++
          else {
            targets.push(...lazy.splice(i, 1))
            more--
          }
        }
      }
      if (short !== undefined) this.announce(lazy, a.topic, short)
      const eager = this.eagerCount(a.data.length)
      if (targets.length > eager && a.data.length >= this.params.lazyPushMinDataSize) {
        // Eager/lazy split: the rest of the mesh is told, and pulls only if it must.
        const lazy = this.eagerFirst(targets, eager).splice(eager)
        this.sendToMany(lazy, {
          subscriptions: [],
          messages: [],
          control: { ...emptyControl(), ihave: [{ topicID: a.topic, messageIDs: [a.id] }] },
        })
      }
      for (const p of this.directIn(a.topic)) {
        if (p === peer || p === a.origin || haveIt?.has(p)) continue
        if (!this.peerDoesNotWant(p, key)) targets.push(p)
      }
      this.sendMarked(targets, m, key, flooded?.peers)
    }
    this.recorder.count('delivered', a.topic, a.class, a.data.length)
    this.events.emit('artifact', a)
  }

  private invalid(peer: PeerKey, topic: Topic, cls: ArtifactClass, reason: string): void {
    this.recorder.count('rejected', topic, cls)
    this.score.invalidMessage(peer, topic)
    this.reject(peer, reason, topic)
  }

  /**
   * Stores the IDONTWANT ids within the peer's budget; ids beyond it are not even read, the
   * peer is penalised and false returned (the rest of the frame is dropped).
   */
  private handleIDontWant(
    peer: PeerKey,
    ps: PeerState,
    entries: RpcControl['idontwant'],
    direct: boolean,
  ): boolean {
    const total = idCount(entries)
    if (total === 0) return true
    const granted = direct ? total : this.budgets.take(peer, 'idontwant', total)
    if (granted < total) {
      // Judged before any id is read: a frame that cuts its sender off costs no per-id work.
      this.overBudget(peer, 'idontwant', total - granted)
      if (this.peers.get(peer) !== ps) return false
    }
    let allowed = granted
    const expiry = this.env.now() + this.params.idontwantTtlMs
    for (const e of entries) {
      for (let i = 0, n = idCountOf(e); i < n; i++) {
        if (allowed-- <= 0) return false
        const id = idAt(e, i)
        const key = messageIdKey(id)
        // IDONTWANT goes to every mesh peer but the first sender: after our copy, it says
        // our push was not the one that delivered.
        const pushed = ps.largePushes
        if (pushed?.recent.delete(key)) pushed.wasted++
        this.peerHas(peer, ps, key, id, expiry)
        this.awaitDontWanted(peer, ps, key, id)
      }
    }
    return true
  }

  /**
   * `peer` has message `key` (IDONTWANT): if it is not here within `idontwantPullMs`, every
   * push of it was lost, and it is pulled (IWANT) from the peers that said they have it, again
   * every `iwantFollowupMs` while their message caches may still hold it (replies get lost too).
   */
  private awaitDontWanted(peer: PeerKey, ps: PeerState, key: string, id: MessageId): void {
    const wait = this.params.idontwantPullMs
    if (wait === Number.POSITIVE_INFINITY) return
    const now = this.env.now()
    if (this.seen.has(key, now)) return
    const known = this.dontWanted.get(key)
    if (known !== undefined) {
      if (known.peers.length < this.params.maxIWantAlternates && !known.peers.includes(peer))
        known.peers.push(peer)
      return
    }
    // A peer's IDONTWANTs for ids that never come (a flood of made-up ids) hold a few entries,
    // not the whole table: honest ones are for messages in flight, gone within the wait.
    if (
      this.dontWanted.size >= this.params.maxIWantTracked ||
      ps.pullsAwaited >= MAX_PULLS_AWAITED_PER_PEER
    ) {
      return
    }
    ps.pullsAwaited++
    const entry: AwaitedPull = { peers: [peer], starter: ps, timer: undefined }
    const until = now + this.params.mcacheLength * this.params.heartbeatIntervalMs
    const check = () => {
      const asked =
        this.seen.has(key, this.env.now()) || this.env.now() >= until
          ? 0
          : this.pullFromAll(entry.peers, key, id)
      if (asked === 0) {
        this.dontWanted.delete(key)
        entry.starter.pullsAwaited--
        return
      }
      entry.timer = this.env.setTimer(this.params.iwantFollowupMs, check)
    }
    entry.timer = this.env.setTimer(wait, check)
    this.dontWanted.set(key, entry)
  }

  /** Pulls message `key` from each of `peers` still connected; returns how many there were. */
  private pullFromAll(peers: PeerKey[], key: string, id: MessageId): number {
    let asked = 0
    for (const p of peers) {
      if (!this.peers.has(p)) continue
      this.pullFrom(p, key, id)
      asked++
    }
    return asked
  }

  /** `peer` has the message `key` (IDONTWANT, or a PREAMBLE of it): we send it no copy. */
  private peerHas(peer: PeerKey, ps: PeerState, key: string, id: MessageId, expiry: number): void {
    // One preambled to us that did not come is pulled from it.
    if (this.preambles.isOverdue(key)) this.pullFrom(peer, key, id)
    this.needsUpkeep(ps)
    ps.dontWant ??= new Map()
    setNewest(ps.dontWant, key, expiry, this.params.maxIDontWantPerPeer)
  }

  private handleGraft(peer: PeerKey, ps: PeerState, grafts: RpcGraft[], out: Rpc): void {
    const now = this.env.now()
    for (const { topicID: topic } of grafts) {
      const mesh = this.meshes.meshOf(topic)
      if (mesh === undefined || mesh.has(peer)) continue
      if (this.isDirect(peer)) {
        // A direct peer lives outside the mesh: its GRAFT is an error on its side (spec v1.1).
        this.log('GRAFT from direct peer %s on %s, answered with PRUNE', peer, topic)
        this.reject(peer, 'graft-from-direct-peer', topic)
        this.pruneResponse(peer, topic, out)
        continue
      }
      const until = this.meshes.backoffUntil(topic, peer)
      if (until !== undefined && until > now) {
        // GRAFT during backoff: a protocol violation, doubly so right after the PRUNE.
        this.score.addPenalty(peer, 1)
        const started = until - this.params.pruneBackoffMs
        if (now < started + this.params.graftFloodThresholdMs) this.score.addPenalty(peer, 1)
        this.reject(peer, 'graft-during-backoff', topic)
        this.pruneResponse(peer, topic, out)
        continue
      }
      // Peers we dialled may go beyond the limit (spec v1.1: they resist takeover by inbound floods).
      const full = !this.meshes.hasRoomFor(
        topic,
        ps.outbound,
        this.withoutOneCopy(ps) ? OPTIMIZED_GRAFT_RULES : this.params,
      )
      if (this.score.belowAt(ps.slot, 0) || full) {
        this.pruneResponse(peer, topic, out)
        continue
      }
      // A GRAFT says the peer subscribes, also when its announcement did not reach us.
      this.handleSubscription(peer, ps, topic, true)
      mesh.add(peer)
      this.score.graft(peer, topic)
    }
  }

  private pruneResponse(peer: PeerKey, topic: Topic, out: Rpc): void {
    this.meshes.setBackoff(topic, peer, this.params.pruneBackoffMs)
    const c = out.control!
    c.prune = withEntry(c.prune, pruneEntry(topic, this.params.pruneBackoffMs))
  }

  private handlePrune(peer: PeerKey, prunes: RpcPrune[]): void {
    for (const p of prunes) {
      // Backoff only matters, and is only kept, for topics we are in (bounded state).
      if (!this.subscriptions.has(p.topicID)) continue
      this.meshes.prunedBy(peer, p.topicID)
      const backoffMs =
        p.backoff !== undefined && p.backoff > 0
          ? Math.min(p.backoff * 1000, 24 * 3600_000)
          : this.params.pruneBackoffMs
      this.meshes.setBackoff(p.topicID, peer, backoffMs)
      // Peer exchange needs dialling, which a sans-IO core cannot do: the offer is noted only.
      if (p.peers.length > 0)
        this.log('%s offered %d peers for %s', peer, p.peers.length, p.topicID)
    }
  }

  /**
   * IHAVE from `peer`: asks (IWANT) for up to this heartbeat's remaining budget of the unseen
   * ids, chosen uniformly at random as stock gossipsub does (it shuffles, then truncates).
   * The ids are visited in a random order and the visit stops once the budget is spent or
   * `maxIHaveIdsExamined` ids were looked at, so an id beyond costs nothing (ids we have seen
   * included) and a peer cannot choose which of its ids are looked at.
   */
  private handleIHave(peer: PeerKey, ps: PeerState, ihaves: RpcIHave[]): MessageId[] {
    if (ihaves.length === 0) return NO_IDS
    if (this.score.belowAt(ps.slot, this.params.thresholds.gossipThreshold)) return NO_IDS
    this.needsUpkeep(ps)
    if (++ps.ihavesThisHeartbeat > this.params.maxIHaveMessages) {
      this.reject(peer, 'ihave-flood')
      return NO_IDS
    }
    const budget = this.params.maxIHaveLength - ps.askedThisHeartbeat
    if (budget <= 0) return NO_IDS
    const delay = this.params.lazyPullDelayMs
    // The entries of subscribed topics; `lazy` marks those from a mesh peer's IHAVE, a lazy
    // push whose full copy is probably on its way (pulled after `lazyPullDelayMs`). Only the
    // ids visited are read from the frame (see `idAt`).
    const { entries, lazy, ends } = IHAVE_SCRATCH
    let count = 0
    let total = 0
    for (let k = 0; k < ihaves.length; k++) {
      const ih = ihaves[k]
      if (!this.subscriptions.has(ih.topicID)) continue
      const n = idCountOf(ih)
      if (n === 0) continue
      entries[count] = ih
      lazy[count] = delay > 0 && this.meshes.meshOf(ih.topicID)?.has(peer) === true
      total += n
      ends[count++] = total
    }
    const now = this.env.now()
    const examined = Math.min(total, this.params.maxIHaveIdsExamined)
    // The ids taken so far are those in `wanted` and `later`; a set finds them when many may
    // be (an IHAVE of a few ids, the usual one, needs neither the set nor a table of swaps).
    const taken = examined > SMALL_IHAVE ? new Set<string>() : undefined
    let takenCount = 0
    let wanted: AdvertisedId[] | undefined
    let later: AdvertisedId[] | undefined
    // Fisher–Yates over the ids' positions (0 to total − 1), its swaps kept sparse: only the
    // positions visited are ever touched (a position swapped with itself needs no entry).
    let swapped: Map<number, number> | undefined
    for (let i = 0; i < examined && takenCount < budget; i++) {
      // One step of the shuffle: position i gets a random position of the rest.
      const j = i + Math.floor(this.env.random() * (total - i))
      const pos = swapped?.get(j) ?? j
      if (j !== i) {
        swapped ??= new Map()
        swapped.set(j, swapped.get(i) ?? i)
      }
      const e = entryAt(ends, count, pos)
      const id = idAt(entries[e]!, pos - (e === 0 ? 0 : ends[e - 1]))
      const key = messageIdKey(id)
      if (
        (taken === undefined ? isListed(wanted, key) || isListed(later, key) : taken.has(key)) ||
        this.seen.has(key, now)
      ) {
        continue
      }
      taken?.add(key)
      takenCount++
      if (lazy[e]) {
        later ??= []
        later.push({ key, id })
      } else {
        wanted ??= []
        wanted.push({ key, id })
      }
    }
    // The scratch list must not keep this frame's entries alive until the next IHAVE.
    entries.fill(undefined, 0, count)
    // Nothing new (the usual IHAVE, of ids we have): the limiter has nothing to track.
    const ask = wanted === undefined ? NO_IDS : this.limiter.advertised(peer, wanted)
    ps.askedThisHeartbeat += ask.length + (later?.length ?? 0)
    if (later === undefined) return ask
    const pulls = later
    this.env.setTimer(delay, () => {
      if (!this.running || !this.peers.has(peer)) return
      const t = this.env.now()
      const pull = this.limiter.advertised(
        peer,
        pulls.filter((c) => !this.seen.has(c.key, t)),
      )
      if (pull.length > 0) this.send(peer, { ...emptyRpc(), control: iwant(pull) })
    })
    return ask
  }

  /**
   * Answers IWANTs from the message cache; returns the ids it could not serve (unknown, asked
   * twice, or past `gossipRetransmission`), which the peer's budget pays for. Past the misses
   * the budget has left, the frame is over budget whatever follows: the ids after are not
   * read and count as misses.
   */
  private handleIWant(peer: PeerKey, ps: PeerState, iwants: RpcIWant[], direct: boolean): number {
    if (iwants.length === 0) return 0
    if (this.score.belowAt(ps.slot, this.params.thresholds.gossipThreshold)) return 0
    const allowed = direct ? Number.POSITIVE_INFINITY : this.budgets.remaining(peer, 'iwantMiss')
    const sent = new Set<string>()
    let misses = 0
    let read = 0
    for (const iw of iwants) {
      for (let i = 0, n = idCountOf(iw); i < n; i++, read++) {
        if (misses > allowed) return misses + idCount(iwants) - read
        const id = idAt(iw, i)
        const key = messageIdKey(id)
        if (this.dontWantOf(ps, key)) continue
        // Asked for it: its IMRECEIVING (a preambled copy that did not come) no longer holds it back.
        this.preambles.wants(peer, key)
        const cached = sent.has(key)
          ? undefined
          : this.mcache.getForPeer(key, peer, this.params.gossipRetransmission)
        if (cached === undefined) {
          misses++
          continue
        }
        sent.add(key)
        this.sendMessage([peer], cached.message, key)
      }
    }
    return misses
  }

  // ---------------------------------------------------------------- publishing

  private publishMessage(m: RpcMessage, cls: ArtifactClass): PublishResult {
    if (!this.running) throw new NotStartedError('gossip router')
    const id = this.msgIdFn(m)
    const key = messageIdKey(id)
    if (this.seen.has(key, this.env.now())) throw new DuplicateMessageError(key)
    const topic = m.topic
    const targets = this.publishTargets(topic, cls)
    if (targets.length === 0) throw new NoPeersError(topic)
    const now = this.env.now()
    this.seen.add(key, now)
    if (this.forwards(cls)) {
      this.mcache.put(key, { id, message: m, topic, class: cls, advertise: true, firstSeen: now })
    }
    this.recorder.count('published', topic, cls)
    this.treeLinks?.publishing(topic, key, targets, m.data?.length ?? 0)
    const mesh = this.meshes.meshOf(topic)
    // A mesh still forming (below D_lo) cannot carry it alone: flood publish as stock does.
    const oc = this.oc
    if (
      oc !== undefined &&
      !this.params.oneCopyFloodPublish &&
      mesh !== undefined &&
      mesh.size >= this.params.Dlo &&
      this.forwards(cls)
    ) {
      // One-copy peers get it through the mesh's eager links, announced on its lazy ones;
      // direct peers get every message.
      const short = shortId(id)
      this.indexShortId(oc, key, bytesKey(short))
      const push = targets.filter(
        (p) =>
          this.isDirect(p) ||
          (!this.isLazyLink(topic, p) && (mesh.has(p) || !this.peers.get(p)?.oneCopy)),
      )
      this.announce(
        targets.filter((p) => this.isLazyLink(topic, p)),
        topic,
        short,
      )
      this.sendMessage(push, m, key)
      return { id, recipients: targets.length }
    }
    // Tell one-copy peers whom the flood went to: nobody pushes to them (rule 2). Its
    // announces then come back within milliseconds: we know the message, and do not pull it.
    const marked = oc !== undefined && this.params.oneCopyFloodPublish && this.marksFlood(topic)
    if (marked) this.indexShortId(oc, key, bytesKey(shortId(id)))
    else if (this.treeLinks !== undefined) {
      // Only remembered, not indexed: an indexed message's announces count as late arrivals
      // and deliveries at its publisher, which cost the single publisher at 100 KB 10% of its
      // p99 (seed 2, past the run's 5 s drain).
      this.treeLinks.ownFlooded(bytesKey(shortId(id)))
    }
    this.sendMarked(
      targets,
      m,
      key,
      marked ? Uint32Array.from(targets, (p) => this.hashOf(p)) : undefined,
    )
    return { id, recipients: targets.length }
  }

  /**
   * Sends message `m` to `peers`, with the flood mark `sentTo` (the peers its publisher sent
   * it to, as peer hashes) to the one-copy peers among them.
   */
  private sendMarked(
    peers: PeerKey[],
    m: RpcMessage,
    key: string,
    sentTo: Uint32Array | undefined,
  ): void {
    const marks = sentTo !== undefined && this.markAllowed(sentTo.length)
    // Source trees: an unsigned message names its publisher to one-copy peers (a signed one
    // names it in `from`).
    const source = m.from === undefined ? this.treeLinks?.sourceOf(key) : undefined
    if (!marks && source === undefined) {
      this.sendMessage(peers, m, key)
      return
    }
    const ours: PeerKey[] = []
    const trees: PeerKey[] = []
    const others: PeerKey[] = []
    for (const p of peers) {
      const ps = this.peers.get(p)
      // `source` only to the peers that run source trees too (their Extensions said so).
      if (ps?.oneCopy !== true) others.push(p)
      else if (ps.sourceTrees && source !== undefined) trees.push(p)
      else ours.push(p)
    }
    const o = emptyOneCopy()
    if (marks) o.sentTo = peerHashesBytes(sentTo)
    this.sendMessage(ours, m, key, marks ? o : undefined)
    if (source !== undefined)
      this.sendMessage(trees, m, key, { ...o, source: peerHashBytes(source) })
    this.sendMessage(others, m, key)
  }

  /**
   * `peer` announced a message and answered none of our asks for it until we gave up: counted
   * against its `unanswered` budget (a peer announcing ids nobody has is cut off).
   */
  private unansweredAnnounce(peer: PeerKey): void {
    const ps = this.peers.get(peer)
    if (ps !== undefined) this.within(peer, ps, this.isDirect(peer), 'unanswered', 1)
  }

  /**
   * Whether `n` more flood-mark hashes may go out: a token bucket of half what each receiver's
   * `mark` budget grants us. A relay passes on the marks of every peer it takes them from, so
   * without it two peers flooding marks within their budgets here would have our one-copy peers
   * cut us off. A message past it goes on unmarked: a receiver pushes where the mark would have
   * made it announce (a duplicate at worst, never a loss).
   */
  private markAllowed(n: number): boolean {
    const now = this.env.now()
    if (this.markAllowance === undefined) {
      const { perSecond, burst } = this.params.budgets.rates.mark
      this.markAllowance = new TokenBucket(perSecond / 2, burst / 2, now)
    }
    return this.markAllowance.tryTake(n, now)
  }

  private publishTargets(topic: Topic, cls: ArtifactClass): PeerKey[] {
    const direct = this.directIn(topic)
    const threshold = this.params.thresholds.publishThreshold
    const topicPeers = [...(this.topicPeers.get(topic) ?? [])].filter(
      (p) => !this.isDirect(p) && !this.score.below(p, threshold),
    )
    // Ingress goes to every topic peer because nobody relays it (seed 001).
    if (!this.forwards(cls) || this.params.floodPublish) return [...direct, ...topicPeers]
    const mesh = this.meshes.meshOf(topic)
    if (mesh !== undefined) return [...direct, ...mesh]
    return [...direct, ...this.meshes.fanoutFor(topic, topicPeers)]
  }

  /** Connected direct peers that subscribe to `topic`. */
  private directIn(topic: Topic): PeerKey[] {
    const out: PeerKey[] = []
    if (this.direct.size === 0) return out
    const subscribed = this.topicPeers.get(topic)
    for (const p of this.direct) if (subscribed?.has(p)) out.push(p)
    return out
  }

  /**
   * How many mesh peers get a large message in full: as many copies as the uplink sends
   * within `eagerPushBudgetMs`, and at least `eagerPushPeers`. A slow uplink sends each
   * copy only after the ones before it, so its later copies would arrive after a pull
   * from a faster neighbour; a fast uplink pushes widely at little cost in time. With an
   * unknown uplink (`uploadBps` Infinity) the fixed `eagerPushPeers` applies.
   */
  private eagerCount(bytes: number): number {
    const { eagerPushPeers, eagerPushBudgetMs, uploadBps } = this.params
    if (uploadBps === Number.POSITIVE_INFINITY) return eagerPushPeers
    return Math.max(eagerPushPeers, Math.floor(eagerPushBudgetMs / this.copyMs(bytes)))
  }

  /** Milliseconds our uplink takes to send one copy of `bytes` (0 when `uploadBps` is unknown). */
  private copyMs(bytes: number): number {
    const { uploadBps } = this.params
    return uploadBps === Number.POSITIVE_INFINITY ? 0 : (bytes * 8000) / uploadBps
  }

  /**
   * Orders relay targets for the eager/lazy split: the peers our pushes reach first lead
   * (a push to a peer that then sends IDONTWANT, or whose queued copy its IDONTWANT
   * cancelled, was not needed), so the pushed copies go where no other path is quicker;
   * the last of the `eager` slots goes to a random other peer, so that new links are tried.
   */
  private eagerFirst(targets: PeerKey[], eager: number): PeerKey[] {
    const score = (p: PeerKey) => {
      const ps = this.peers.get(p)
      if (ps === undefined) return 0
      const pushed = ps.largePushes
      return pushed === undefined ? 0.5 : (pushed.count - pushed.wasted + 1) / (pushed.count + 2)
    }
    const ranked = this.shuffle(targets).sort((a, b) => score(b) - score(a))
    const explore = eager - 1 + Math.floor(this.env.random() * (ranked.length - eager + 1))
    const t = ranked[eager - 1]
    ranked[eager - 1] = ranked[explore]
    ranked[explore] = t
    return ranked
  }

  private forwards(cls: ArtifactClass): boolean {
    return cls === 'consensus' || this.params.forwardIngress
  }

  // ---------------------------------------------------------------- IDONTWANT

  private sendIDontWant(
    topic: Topic,
    cls: ArtifactClass,
    id: MessageId,
    from: PeerKey,
    asked: PeerKey[],
  ): void {
    const to = this.noticeTargets(topic, from, asked, cls).filter((p) =>
      supportsIDontWant(this.peers.get(p)?.protocol),
    )
    if (to.length > 0) {
      this.sendToMany(to, {
        subscriptions: [],
        messages: [],
        control: { ...emptyControl(), idontwant: [{ messageIDs: [id] }] },
      })
    }
  }

  /** The peers that may be about to send us a message of `topic` (but `from`, whose copy came). */
  private noticeTargets(
    topic: Topic,
    from: PeerKey,
    asked: PeerKey[],
    cls = this.classOf(topic),
  ): PeerKey[] {
    const targets = new Set<PeerKey>()
    // Only peers that relay this class can be about to send it to us.
    if (this.forwards(cls)) for (const p of this.meshes.meshOf(topic) ?? []) targets.add(p)
    // Peers we asked with IWANT may have the reply queued: tell them too.
    for (const p of asked) targets.add(p)
    targets.delete(from)
    // A lazy one-copy link pushes nothing: no notice needed there.
    return [...targets].filter((p) => !this.oc?.roles.announcesToUs(topic, p))
  }

  /**
   * True for an explicit (direct) peer. Most nodes have none: the size check spares a lookup
   * in a table of the node's own, a cache miss at every frame of a large simulation.
   */
  private isDirect(peer: PeerKey): boolean {
    return this.direct.size > 0 && this.direct.has(peer)
  }

  private dontWantOf(ps: PeerState, key: string): boolean {
    const until = ps.dontWant?.get(key)
    return until !== undefined && until > this.env.now()
  }

  private peerDoesNotWant(peer: PeerKey, key: string): boolean {
    const ps = this.peers.get(peer)
    return ps === undefined || this.dontWantOf(ps, key) || this.preambles.isReceiving(peer, key)
  }

  // ---------------------------------------------------------------- heartbeat

  private heartbeat(): void {
    if (!this.running) return
    const now = this.env.now()
    if (now - this.lastDecay >= this.params.score.decayIntervalMs) {
      this.score.refresh()
      this.lastDecay = now
    }
    if (this.params.oneCopy) {
      for (const [peer, ps] of this.peers) {
        if (ps.oneCopyHeard && !ps.oneCopy) {
          // Our hello or its reply was lost (lossy links): ask again until one comes back.
          this.pendingOneCopyOf(peer).hello = HELLO_ASK
          if (ps.sourceTrees) this.treeLinks?.hello(peer, now)
        }
      }
    }
    this.peerUpkeep(now)
    this.preambles.prune()
    // Clearing a map allocates a new table: only when there is something to clear.
    const gossiped = this.oc?.gossiped
    if (gossiped !== undefined && gossiped.size > 0) gossiped.clear()
    this.meshes.heartbeat(now, this.subscriptions)
    this.oc?.roles.heartbeat(this.subscriptions)
    this.treeLinks?.heartbeat(now)
    this.flushControl()
    this.mcache.shift()
    this.seen.prune(now)
    this.heartbeatTimer = this.env.setTimer(this.params.heartbeatIntervalMs, this.beat)
  }

  /** Lists `ps` for the next heartbeat's upkeep (once; never a disconnected peer). */
  private needsUpkeep(ps: PeerState): void {
    if (ps.upkeep !== IDLE) return
    ps.upkeep = BUSY
    ps.nextBusy = this.busyPeers
    this.busyPeers = ps
  }

  /**
   * The heartbeat's per-peer upkeep, for the listed peers only (the others have nothing to
   * reset, decay or expire): push counts decay, per-heartbeat counters reset, IDONTWANTs
   * expire. A peer stays listed while it has decaying counts or IDONTWANTs held.
   */
  private peerUpkeep(now: number): void {
    // Each peer's upkeep is its own: the list's order does not matter.
    let next = this.busyPeers
    let kept: PeerState | undefined
    while (next !== undefined) {
      const ps = next
      next = ps.nextBusy
      ps.nextBusy = undefined
      if (ps.upkeep !== BUSY) continue
      // wasted ≤ count, so both are 0 when count is.
      const pushed = ps.largePushes
      if (pushed !== undefined && pushed.count !== 0) {
        pushed.count *= PUSH_DECAY
        pushed.wasted *= PUSH_DECAY
      }
      ps.ihavesThisHeartbeat = 0
      ps.askedThisHeartbeat = 0
      if (ps.dontWant !== undefined) {
        expireDontWant(ps.dontWant, now)
        if (ps.dontWant.size === 0) ps.dontWant = undefined
      }
      if ((pushed !== undefined && pushed.count !== 0) || ps.dontWant !== undefined) {
        ps.nextBusy = kept
        kept = ps
      } else ps.upkeep = IDLE
    }
    this.busyPeers = kept
  }

  // ---------------------------------------------------------------- sending

  private control(peer: PeerKey): RpcControl {
    const ps = this.peers.get(peer)
    // Not a peer: nothing to send it (a queue of its own would be dropped at the flush anyway).
    if (ps === undefined) return emptyControl()
    let c = ps.pending
    if (c === undefined) {
      c = emptyControl()
      ps.pending = c
      this.pendingPeers[this.pendingCount] = peer
      this.pendingStates[this.pendingCount++] = ps
    }
    return c
  }

  private flushControl(): void {
    const count = this.pendingCount
    this.pendingCount = 0
    for (let i = 0; i < count; i++) {
      const peer = this.pendingPeers[i]
      const ps = this.pendingStates[i]!
      this.pendingStates[i] = undefined
      const control = ps.pending
      // Gone since (a peer that came back is listed again, later).
      if (control === undefined) continue
      ps.pending = undefined
      const oneCopy = this.pendingOneCopy.get(peer)
      this.pendingOneCopy.delete(peer)
      if (!isControlEmpty(control) || !isOneCopyEmpty(oneCopy)) {
        this.send(peer, {
          subscriptions: NO_SUBSCRIPTIONS,
          messages: NO_MESSAGES,
          control,
          oneCopy,
        })
      }
    }
    this.pendingOneCopy.forEach((oneCopy, peer) => {
      if (this.peers.has(peer)) this.sendOneCopy(peer, oneCopy)
    })
    if (this.pendingOneCopy.size > 0) this.pendingOneCopy.clear()
  }

  /**
   * Sends one message to `peers`, encoded once. With a finite `uploadBps` the frames wait in
   * the send queue instead, where an IDONTWANT can still cancel them.
   */
  private sendMessage(peers: PeerKey[], m: RpcMessage, key: string, oneCopy?: RpcOneCopy): void {
    if (peers.length === 0) return
    const rpc: Rpc = { subscriptions: [], messages: [m], oneCopy }
    if (this.params.uploadBps === Number.POSITIVE_INFINITY) {
      const payload = m.data?.length ?? 0
      for (const peer of peers) this.preambleTo(peer, key, payload)
      this.sendToMany(peers, rpc)
      for (const peer of peers) this.notePush(peer, key, payload)
      return
    }
    this.uplink.enqueue(peers, key, this.encodeRpc(rpc), payloadBytes(rpc))
  }

  /** Remembers a large message sent to `peer`, to learn from its IDONTWANT whether it was needed. */
  private notePush(peer: PeerKey, key: string, payload: number): void {
    if (payload < this.params.lazyPushMinDataSize) return
    const ps = this.peers.get(peer)
    if (ps === undefined) return
    this.needsUpkeep(ps)
    ps.largePushes ??= new LargePushes()
    const pushed = ps.largePushes
    pushed.count++
    if (pushed.recent.size >= MAX_RECENT_PUSHES) {
      const oldest = pushed.recent.values().next().value
      if (oldest !== undefined) pushed.recent.delete(oldest)
    }
    pushed.recent.add(key)
  }

  /** A large message queued for `peer` was cancelled: it had it from someone else first. */
  private noteUnneededPush(peer: PeerKey, payload: number): void {
    if (payload < this.params.lazyPushMinDataSize) return
    const ps = this.peers.get(peer)
    if (ps === undefined) return
    this.needsUpkeep(ps)
    ps.largePushes ??= new LargePushes()
    ps.largePushes.count++
    ps.largePushes.wasted++
  }

  private send(peer: PeerKey, rpc: Rpc): void {
    // Not through sendToMany: no list per frame (every control frame comes this way).
    const frame = this.encodeRpc(rpc)
    this.sendFrame(peer, frame, rpc, payloadBytes(rpc))
  }

  private sendToMany(peers: PeerKey[], rpc: Rpc): void {
    if (peers.length === 0) return
    // Encoded once: forwarding one message to the whole mesh costs one encoding.
    const frame = this.encodeRpc(rpc)
    const payload = payloadBytes(rpc)
    for (const peer of peers) this.sendFrame(peer, frame, rpc, payload)
  }

  /** Sends `frame`, the encoding of `rpc` (`payload` bytes of messages), to `peer`, counted. */
  private sendFrame(peer: PeerKey, frame: Uint8Array, rpc: Rpc, payload: number): void {
    this.recorder.frameSent(frame.length, payload)
    this.counts.control(rpc.control, true)
    this.counts.oneCopy(rpc.oneCopy, true)
    this.env.send(peer, frame)
  }

  private shuffle<T>(items: T[]): T[] {
    return shuffle(items, () => this.env.random())
  }
}

/** Drops expired IDONTWANT ids (insertion order is expiry order). */
function expireDontWant(dontWant: Map<string, number>, now: number): void {
  for (const [key, until] of dontWant) {
    if (until > now) break
    dontWant.delete(key)
  }
}

/**
 * Frames above this many bytes are decoded within the sender's id budgets; below it a frame
 * holds at most half as many ids, cheap to decode whole before the budgets judge it.
 */
const BUDGETED_DECODE_BYTES = 4096

/** A message some peers sent IDONTWANT for that has not come: pulled from them if it does not. */
interface AwaitedPull {
  /** Peers that said they have it (at most `maxIWantAlternates`). */
  peers: PeerKey[]
  /** The peer whose IDONTWANT started the wait (its count of waits is given back at the end). */
  starter: PeerState
  timer: TimerHandle | undefined
}

/** Waits for IDONTWANTed messages one peer may start (see `idontwantPullMs`). */
const MAX_PULLS_AWAITED_PER_PEER = 256

/**
 * Bytes one id takes in a frame, key and length included, for a content id of ours
 * ({@link CONTENT_ID_LENGTH} bytes): the unit a frame whose decoding stopped at its id budget
 * is taken to be full of, its ids uncounted.
 */
const ID_ENTRY_BYTES = CONTENT_ID_LENGTH + 2

/** The ids a frame of `bytes` bytes is taken to hold when it was not read to the end. */
function estimatedIds(bytes: number): number {
  return Math.floor(bytes / ID_ENTRY_BYTES)
}

/**
 * The direct peers of every router that has none (shared, never written): every frame
 * received asks whether its sender is direct, and a set per router was a cache miss each
 * time in a large simulation.
 */
const NO_DIRECT_PEERS: ReadonlySet<PeerKey> = new Set()

/** No ids (a shared empty list, never written). */
const NO_IDS: MessageId[] = []

/** No subscriptions, for the heartbeat's control frames (frozen: shared by every frame). */
const NO_SUBSCRIPTIONS = Object.freeze([]) as unknown as RpcSubscription[]

/** No messages, for the heartbeat's control frames (frozen: shared by every frame). */
const NO_MESSAGES = Object.freeze([]) as unknown as RpcMessage[]

/** IHAVE ids examined at most for the ones taken to be looked up in lists rather than a set. */
const SMALL_IHAVE = 8

/**
 * {@link GossipRouter}'s lists of the IHAVE being read, filled up to a count for each (it runs
 * for millions of gossip frames in a large simulation and never calls out to another router,
 * so the routers share them and they stay in the cache). Never truncated: setting an array's
 * length to 0 drops its storage, and every IHAVE then allocated three arrays anew.
 */
const IHAVE_SCRATCH = {
  entries: [] as (RpcIHave | undefined)[],
  lazy: [] as boolean[],
  ends: [] as number[],
}

/** True when `list` holds an id of key `key`. */
function isListed(list: AdvertisedId[] | undefined, key: string): boolean {
  if (list === undefined) return false
  for (const a of list) if (a.key === key) return true
  return false
}

/**
 * The index of the first of `ends` (ascending, the first `count` used) above `pos`: the
 * entry holding id position `pos`.
 */
function entryAt(ends: number[], count: number, pos: number): number {
  let lo = 0
  let hi = count - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ends[mid] <= pos) lo = mid + 1
    else hi = mid
  }
  return lo
}

function iwant(ids: MessageId[]): RpcControl {
  return { ...emptyControl(), iwant: [{ messageIDs: ids }] }
}
