import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NodeConfig, parseNodeCommand, UsageError } from '../../src/cli/node-config.ts'

const PEER = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEPrrFUygqsP3LhTJXy7E5zGQFHVt3Byog4M8RtXZZtq6'

function config(args: string[]): NodeConfig {
  const command = parseNodeCommand(args)
  if (command.kind !== 'run') throw new Error(`expected a run command, got ${command.kind}`)
  return command.config
}

function usageError(args: string[]): string {
  try {
    parseNodeCommand(args)
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error(`no error for ${args.join(' ')}`)
}

describe('node command line', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consensus-multicast-config-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('fills in the defaults (loopback, any port, consensus class, status every second)', () => {
    const c = config(['node', '--strategy', 'gossip', '--topic', 't'])
    expect(c.strategy).toBe('gossip')
    expect(c.rp).toBeUndefined()
    expect(c.listen.map(String)).toEqual(['/ip4/127.0.0.1/tcp/0'])
    expect(c).toMatchObject({
      topic: 't',
      peers: [],
      rate: 0,
      size: 256,
      class: 'consensus',
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      statusIntervalMs: 1000,
      printMessages: false,
      stdin: true,
    })
  })

  it('reads repeated addresses, the rate and the RP roles', () => {
    const c = config(['--strategy', 'flood', '--topic', 't', '--peer', PEER, '--peer', PEER])
    expect(c.peers.map(String)).toEqual([PEER, PEER])
    expect(
      config(['--strategy', 'gossip', '--topic', 't', '--rate', '50', '--size', '1024']),
    ).toMatchObject({ rate: 50, size: 1024 })
    const member = config(['--strategy', 'rp', '--topic', 't', '--role', 'member', '--rp', PEER])
    expect(member.rp?.role).toBe('member')
    expect(member.rp?.role === 'member' && member.rp.rps.map(String)).toEqual([PEER])
    const rp = config(['--strategy', 'rp', '--topic', 't', '--role', 'rp', '--backbone', PEER])
    expect(rp.rp?.role === 'rp' && rp.rp.backbone.map(String)).toEqual([PEER])
  })

  it('says what is wrong with a bad command line', () => {
    expect(usageError(['--strategy', 'pigeon', '--topic', 't'])).toBe(
      'unknown --strategy "pigeon" (expected gossip, rp, flood)',
    )
    expect(usageError(['--topic', 't'])).toMatch(/missing --strategy/)
    expect(usageError(['--strategy', 'gossip'])).toBe('missing --topic')
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--listen', '/ip9/x'])).toMatch(
      /^bad multiaddr for --listen "\/ip9\/x"/,
    )
    expect(
      usageError(['--strategy', 'gossip', '--topic', 't', '--peer', '/ip4/1.2.3.4/tcp/1']),
    ).toBe('--peer /ip4/1.2.3.4/tcp/1 must end in /p2p/<peer id>')
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--rate=-3'])).toMatch(
      /--rate must be an integer/,
    )
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--class', 'urgent'])).toMatch(
      /unknown --class/,
    )
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--role', 'rp'])).toBe(
      '--role applies to --strategy rp only',
    )
    expect(usageError(['--strategy', 'rp', '--topic', 't'])).toMatch(/needs --role/)
    expect(usageError(['--strategy', 'rp', '--topic', 't', '--role', 'member'])).toMatch(
      /needs at least one --rp/,
    )
    expect(usageError(['--strategy', 'rp', '--topic', 't', '--role', 'rp', '--rp', PEER])).toBe(
      '--rp applies to --role member only',
    )
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--size', 'big'])).toMatch(
      /--size must be an integer/,
    )
    expect(usageError(['--strategy', 'gossip', '--topic', 't', '--colour'])).toMatch(/colour/)
    expect(usageError(['--peer-id'])).toBe('--peer-id needs --key-file')
  })

  it('reads the LAN multicast options of either RP role, and refuses them elsewhere', async () => {
    const rp = ['--strategy', 'rp', '--topic', 't', '--role', 'rp']
    const member = ['--strategy', 'rp', '--topic', 't', '--role', 'member', '--rp', PEER]
    expect(config(rp).rp?.lanMulticast).toBeUndefined()
    expect(config([...rp, '--lan-multicast', '10.0.3.7']).rp?.lanMulticast).toEqual({
      interfaceAddress: '10.0.3.7',
      ttl: 1,
      sourceSpecific: true,
    })
    const m = config([
      ...member,
      '--lan-multicast',
      '10.0.3.21',
      '--lan-ttl',
      '4',
      '--lan-any-source',
    ])
    expect(m.rp).toMatchObject({
      role: 'member',
      lanMulticast: { interfaceAddress: '10.0.3.21', ttl: 4, sourceSpecific: false },
    })
    expect(usageError([...rp, '--lan-multicast', 'eth0'])).toBe(
      '--lan-multicast must be the IPv4 address of a LAN interface, got "eth0"',
    )
    expect(usageError([...rp, '--lan-multicast', '10.0.3.7', '--lan-ttl', '0'])).toMatch(
      /--lan-ttl must be an integer from 1 to 255/,
    )
    expect(usageError([...rp, '--lan-multicast', '10.0.3.7', '--lan-ttl', '256'])).toMatch(
      /--lan-ttl must be an integer from 0 to 255/,
    )
    expect(usageError([...rp, '--lan-any-source'])).toBe('--lan-any-source needs --lan-multicast')
    expect(
      usageError(['--strategy', 'gossip', '--topic', 't', '--lan-multicast', '10.0.0.1']),
    ).toBe('--lan-multicast applies to --strategy rp only')
    // In a config file too.
    const file = join(dir, 'lan.json')
    const json = { strategy: 'rp', topic: 't', role: 'rp', 'lan-any-source': true }
    await writeFile(file, JSON.stringify({ ...json, 'lan-multicast': '10.0.3.7' }))
    expect(config(['--config', file]).rp?.lanMulticast).toEqual({
      interfaceAddress: '10.0.3.7',
      ttl: 1,
      sourceSpecific: false,
    })
  })

  it('answers --help and --peer-id without validating the rest', () => {
    expect(parseNodeCommand(['--help'])).toEqual({ kind: 'help' })
    expect(parseNodeCommand(['--peer-id', '--key-file', 'k'])).toEqual({
      kind: 'peer-id',
      keyFile: 'k',
    })
  })

  it('reads a JSON config file; the command line wins over it', async () => {
    const file = join(dir, 'node.json')
    await writeFile(
      file,
      JSON.stringify({
        strategy: 'rp',
        topic: 'votes',
        role: 'member',
        rp: PEER,
        rate: 5,
        'print-messages': true,
      }),
    )
    const c = config(['--config', file, '--rate', '7'])
    expect(c).toMatchObject({ strategy: 'rp', topic: 'votes', rate: 7, printMessages: true })
    expect(c.rp?.role === 'member' && c.rp.rps.map(String)).toEqual([PEER])
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ strategy: 'gossip', topic: 't', colour: 'red' }))
    expect(usageError(['--config', bad])).toBe(`config file ${bad}: unknown option "colour"`)
    expect(usageError(['--config', join(dir, 'missing.json')])).toMatch(/^cannot read config file/)
  })
})
