import { readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import { parseArgs } from 'node:util'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { type ArtifactClass, isArtifactClass } from '../common/artifact.ts'

/** The strategies the node command runs. */
export const NODE_STRATEGIES = ['gossip', 'rp', 'flood'] as const

/** A strategy the node command runs. */
export type NodeStrategy = (typeof NODE_STRATEGIES)[number]

/** RP multicast on a LAN interface (`--lan-multicast`; README, "Deploying RPs with multicast"). */
export interface LanMulticastConfig {
  /** IPv4 address of the LAN interface: an RP multicasts from it, a member joins on it. */
  interfaceAddress: string
  /** IP TTL of the RP's datagrams (1: they stay on the LAN). */
  ttl: number
  /** Join (S, G) channels (IGMPv3); false: any-source groups (IGMPv2 networks). */
  sourceSpecific: boolean
}

/** What `--strategy rp` needs on top of the common settings. */
export type RpRoleConfig = (
  | { role: 'member'; rps: Multiaddr[] }
  | { role: 'rp'; backbone: Multiaddr[] }
) & {
  /** LAN multicast, with `--lan-multicast`; absent, unicast only. */
  lanMulticast?: LanMulticastConfig
}

/** A validated configuration of `consensus-multicast node`. */
export interface NodeConfig {
  /** Which strategy the node runs. */
  strategy: NodeStrategy
  /** The replication-point role and its peers; present exactly when the strategy is `rp`. */
  rp?: RpRoleConfig
  /** Addresses to listen on. */
  listen: Multiaddr[]
  /** Peers to connect to and stay connected to (each ends in `/p2p/<peer id>`). */
  peers: Multiaddr[]
  /** The topic subscribed to and published on. */
  topic: string
  /** File holding the node's private key (created if missing); none: a fresh key per run. */
  keyFile?: string
  /** Messages per second to publish (0: none). */
  rate: number
  /** Payload bytes of each rate-published message. */
  size: number
  /** Class of published messages. */
  class: ArtifactClass
  /** Port of the Prometheus endpoint (0: any free port); none: no endpoint. */
  metricsPort?: number
  /** Host the Prometheus endpoint binds to. */
  metricsHost: string
  /** Milliseconds between status lines (0: none). */
  statusIntervalMs: number
  /** Print a line per delivered and per rate-published message. */
  printMessages: boolean
  /** Read messages to publish from stdin, one per line. */
  stdin: boolean
}

/** What the command line asks for: run a node, print help, or print the peer id of a key file. */
export type NodeCommand =
  | { kind: 'run'; config: NodeConfig }
  | { kind: 'help' }
  | { kind: 'peer-id'; keyFile: string }

/** A bad command line or configuration file: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The usage text of `consensus-multicast node`. */
export const NODE_USAGE = `Usage: consensus-multicast node --strategy gossip|rp|flood --topic T [options]
       npm run node -- --strategy gossip|rp|flood --topic T [options]

Runs one libp2p node (TCP, noise, yamux, identify) with a dissemination strategy, prints a
status line, publishes what it reads on stdin (one message per line) and, with --rate, at a
set rate.

  --strategy S         gossip, rp (replication points) or flood
  --topic T            topic to subscribe to and publish on
  --listen ADDR        multiaddr to listen on (repeatable; default /ip4/127.0.0.1/tcp/0)
  --peer ADDR          peer to connect to, ending in /p2p/<peer id> (repeatable)
  --role R             with --strategy rp: rp or member
  --rp ADDR            member: an RP, ending in /p2p/<peer id> (repeatable, in preference order)
  --backbone ADDR      rp: another RP of the backbone, ending in /p2p/<peer id> (repeatable)
  --lan-multicast IP   rp: multicast each message once into the LAN of this IPv4 interface;
                       member: receive its RP's multicast on this interface (falls back to
                       unicast by itself when the probe does not come back)
  --lan-ttl N          with --lan-multicast: IP TTL of the datagrams (default 1: LAN only)
  --lan-any-source     with --lan-multicast: join any-source groups (IGMPv2 networks)
                       instead of source-specific (S, G) channels
  --key-file F         the node's private key, created if missing (a stable peer id)
  --peer-id            print the peer id of --key-file (creating it if missing) and exit
  --rate N             publish N messages per second
  --size B             payload bytes of rate-published messages (default 256)
  --class C            consensus (default) or ingress
  --no-stdin           do not read messages from stdin
  --metrics-port P     serve Prometheus metrics on http://HOST:P/metrics (0: any free port)
  --metrics-host H     host of the metrics endpoint (default 127.0.0.1)
  --status-interval MS milliseconds between status lines (default 1000; 0: none)
  --print-messages     print a line per delivered (and rate-published) message
  --config F           JSON file with any of the options above (keys as the option names,
                       repeatable ones as arrays); options on the command line win
  --help               this text

Output lines (stdout): "listening <multiaddr>", "metrics <url>", "status ...",
"published topic=T bytes=N id=HEX recipients=N", "publish-failed topic=T code=C error=...",
"delivered topic=T bytes=N id=HEX from=PEER".`

const OPTIONS = {
  strategy: { type: 'string' },
  topic: { type: 'string' },
  listen: { type: 'string', multiple: true },
  peer: { type: 'string', multiple: true },
  role: { type: 'string' },
  rp: { type: 'string', multiple: true },
  backbone: { type: 'string', multiple: true },
  'lan-multicast': { type: 'string' },
  'lan-ttl': { type: 'string' },
  'lan-any-source': { type: 'boolean' },
  'key-file': { type: 'string' },
  'peer-id': { type: 'boolean' },
  rate: { type: 'string' },
  size: { type: 'string' },
  class: { type: 'string' },
  'no-stdin': { type: 'boolean' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'status-interval': { type: 'string' },
  'print-messages': { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

type OptionName = keyof typeof OPTIONS
type RawValue = string | boolean | string[]
type RawOptions = Partial<Record<OptionName, RawValue>>

/** Parses the arguments after `node` (an optional leading `node` subcommand is skipped). */
export function parseNodeCommand(argv: readonly string[]): NodeCommand {
  const args = argv[0] === 'node' ? argv.slice(1) : [...argv]
  let values: RawOptions
  try {
    values = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help === true) return { kind: 'help' }
  const fromFile = typeof values.config === 'string' ? readConfigFile(values.config) : {}
  const raw: RawOptions = { ...fromFile, ...values }
  if (raw['peer-id'] === true) {
    const keyFile = optionalString(raw, 'key-file')
    if (keyFile === undefined) throw new UsageError('--peer-id needs --key-file')
    return { kind: 'peer-id', keyFile }
  }
  return { kind: 'run', config: validate(raw) }
}

function readConfigFile(path: string): RawOptions {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path} must hold a JSON object`)
  }
  const out: RawOptions = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in OPTIONS) || key === 'config') {
      throw new UsageError(`config file ${path}: unknown option "${key}"`)
    }
    const spec = OPTIONS[key as OptionName]
    const multiple = 'multiple' in spec
    out[key as OptionName] = configValue(path, key, value, spec.type, multiple)
  }
  return out
}

function configValue(
  path: string,
  key: string,
  value: unknown,
  type: 'string' | 'boolean',
  multiple: boolean,
): RawValue {
  if (type === 'boolean') {
    if (typeof value !== 'boolean')
      throw new UsageError(`config file ${path}: "${key}" must be true or false`)
    return value
  }
  const asString = (v: unknown) => {
    if (typeof v === 'string') return v
    if (typeof v === 'number' && Number.isFinite(v)) return String(v)
    throw new UsageError(`config file ${path}: "${key}" must be a string or a number`)
  }
  if (multiple) return Array.isArray(value) ? value.map(asString) : [asString(value)]
  return asString(value)
}

function optionalString(raw: RawOptions, name: OptionName): string | undefined {
  const v = raw[name]
  return typeof v === 'string' ? v : undefined
}

function list(raw: RawOptions, name: OptionName): string[] {
  const v = raw[name]
  return Array.isArray(v) ? v : []
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`unknown --${name} "${value}" (expected ${allowed.join(', ')})`)
  }
  return value as T
}

function integer(raw: RawOptions, name: OptionName, fallback: number, max: number): number {
  const v = optionalString(raw, name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new UsageError(`--${name} must be an integer from 0 to ${max}, got "${v}"`)
  }
  return n
}

function address(name: string, value: string, needsPeerId: boolean): Multiaddr {
  let addr: Multiaddr
  try {
    addr = multiaddr(value)
  } catch (err) {
    throw new UsageError(`bad multiaddr for --${name} "${value}": ${(err as Error).message}`)
  }
  if (needsPeerId && !addr.getComponents().some((c) => c.name === 'p2p')) {
    throw new UsageError(`--${name} ${value} must end in /p2p/<peer id>`)
  }
  return addr
}

const addresses = (raw: RawOptions, name: OptionName, needsPeerId: boolean) =>
  list(raw, name).map((v) => address(name, v, needsPeerId))

function rpRole(raw: RawOptions, strategy: NodeStrategy): RpRoleConfig | undefined {
  const role = optionalString(raw, 'role')
  if (strategy !== 'rp') {
    for (const name of RP_ONLY) {
      if (raw[name] !== undefined) throw new UsageError(`--${name} applies to --strategy rp only`)
    }
    return undefined
  }
  if (role === undefined) throw new UsageError('--strategy rp needs --role rp or --role member')
  if (oneOf('role', role, ['rp', 'member'] as const) === 'member') {
    if (raw.backbone !== undefined) throw new UsageError('--backbone applies to --role rp only')
    const rps = addresses(raw, 'rp', true)
    if (rps.length === 0) throw new UsageError('--role member needs at least one --rp address')
    return withLan(raw, { role: 'member', rps })
  }
  if (raw.rp !== undefined) throw new UsageError('--rp applies to --role member only')
  return withLan(raw, { role: 'rp', backbone: addresses(raw, 'backbone', true) })
}

const RP_ONLY = ['role', 'rp', 'backbone', 'lan-multicast', 'lan-ttl', 'lan-any-source'] as const

/** Adds the `--lan-*` options to an RP role. */
function withLan(raw: RawOptions, role: RpRoleConfig): RpRoleConfig {
  const interfaceAddress = optionalString(raw, 'lan-multicast')
  if (interfaceAddress === undefined) {
    for (const name of ['lan-ttl', 'lan-any-source'] as const) {
      if (raw[name] !== undefined) throw new UsageError(`--${name} needs --lan-multicast`)
    }
    return role
  }
  if (!isIPv4(interfaceAddress)) {
    throw new UsageError(
      `--lan-multicast must be the IPv4 address of a LAN interface, got "${interfaceAddress}"`,
    )
  }
  const ttl = integer(raw, 'lan-ttl', 1, 255)
  if (ttl === 0) throw new UsageError('--lan-ttl must be an integer from 1 to 255, got "0"')
  return {
    ...role,
    lanMulticast: { interfaceAddress, ttl, sourceSpecific: raw['lan-any-source'] !== true },
  }
}

/** Largest --rate and --size accepted (a bound, so a typo cannot exhaust the machine). */
const MAX_RATE = 100_000
const MAX_SIZE = 16 << 20

function validate(raw: RawOptions): NodeConfig {
  const strategyName = optionalString(raw, 'strategy')
  if (strategyName === undefined) throw new UsageError('missing --strategy (gossip, rp or flood)')
  const strategy = oneOf('strategy', strategyName, NODE_STRATEGIES)
  const topic = optionalString(raw, 'topic')
  if (topic === undefined || topic === '') throw new UsageError('missing --topic')
  const cls = optionalString(raw, 'class') ?? 'consensus'
  if (!isArtifactClass(cls))
    throw new UsageError(`unknown --class "${cls}" (expected consensus, ingress)`)
  const listen = addresses(raw, 'listen', false)
  const metricsPort = optionalString(raw, 'metrics-port')
  return {
    strategy,
    rp: rpRole(raw, strategy),
    listen: listen.length > 0 ? listen : [multiaddr('/ip4/127.0.0.1/tcp/0')],
    peers: addresses(raw, 'peer', true),
    topic,
    keyFile: optionalString(raw, 'key-file'),
    rate: integer(raw, 'rate', 0, MAX_RATE),
    size: integer(raw, 'size', 256, MAX_SIZE),
    class: cls,
    metricsPort: metricsPort === undefined ? undefined : integer(raw, 'metrics-port', 0, 65535),
    metricsHost: optionalString(raw, 'metrics-host') ?? '127.0.0.1',
    statusIntervalMs: integer(raw, 'status-interval', 1000, 3_600_000),
    printMessages: raw['print-messages'] === true,
    stdin: raw['no-stdin'] !== true,
  }
}
