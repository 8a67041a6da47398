import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PROBE = join(ROOT, 'test/package/load-probe.ts')
const run = promisify(execFile)

/** The file URL of a path relative to the project root, as the probe reports it. */
const fileUrl = (path: string) => pathToFileURL(join(ROOT, path)).href

/**
 * Every entry point and exactly what it exports: runtime values and type-only names. A name
 * added to or removed from an entry point fails this test until it is listed here, so the
 * public surface changes only on purpose.
 */
const SURFACE: Record<string, { source: string; values: string[]; types: string[] }> = {
  '.': {
    source: 'src/index.ts',
    values: [
      'ARTIFACT_CLASSES',
      'ConsensusMulticastError',
      'DecodeError',
      'DuplicateMessageError',
      'InvalidParametersError',
      'LimitExceededError',
      'MessageTooLargeError',
      'NoPeersError',
      'NotStartedError',
      'NotSubscribedError',
      'ReplayError',
      'SignatureError',
      'TimeoutError',
      'ValidationError',
      'isArtifactClass',
      'messageIdEquals',
      'messageIdFromKey',
      'messageIdKey',
    ],
    types: [
      'Artifact',
      'ArtifactClass',
      'ControlStats',
      'DisconnectOptions',
      'Dissemination',
      'DisseminationEvents',
      'DisseminationStats',
      'DriverStats',
      'DuplicateEvent',
      'Env',
      'ErrorCode',
      'FlowStats',
      'Listener',
      'MessageId',
      'PeerInfo',
      'PeerKey',
      'ProtocolCore',
      'PublishOptions',
      'PublishResult',
      'RejectedEvent',
      'StrategyName',
      'TimerHandle',
      'Topic',
      'ValidationResult',
      'Validator',
      'WireStats',
    ],
  },
  './flood': {
    source: 'src/flood/index.ts',
    values: ['FLOOD_PROTOCOL', 'FloodCore', 'flood'],
    types: ['FloodOptions', 'FloodService'],
  },
  './gossip': {
    source: 'src/gossip/index.ts',
    values: [
      'DEFAULT_PEER_BUDGETS',
      'DEFAULT_RPC_LIMITS',
      'GOSSIP_PROTOCOLS',
      'GossipRouter',
      'MESHSUB_1_0',
      'MESHSUB_1_1',
      'MESHSUB_1_2',
      'MESHSUB_1_3',
      'RpcLimitError',
      'defaultMessageId',
      'denyListGater',
      'gossip',
      'refusingTcp',
    ],
    types: [
      'AddressRefusal',
      'BudgetKind',
      'BudgetRate',
      'DenyList',
      'DenyListGater',
      'DenyListGaterOptions',
      'GossipParams',
      'GossipParamsOptions',
      'GossipProfile',
      'GossipRouterOptions',
      'GossipService',
      'GossipServiceComponents',
      'GossipServiceOptions',
      'MessageIdFn',
      'PeerBudgetParams',
      'RpcDecoder',
      'RpcLimits',
      'RpcMessage',
      'ScoreParams',
      'ScoreThresholds',
      'SignaturePolicy',
      'TopicScoreParams',
    ],
  },
  './rp': {
    source: 'src/rp/index.ts',
    values: [
      'Ed25519PeerSignatures',
      'RP_PROTOCOL',
      'ReplicationPoint',
      'RpMember',
      'RpService',
      'replicationPoints',
    ],
    types: [
      'MemberOptions',
      'PeerSignatures',
      'PublishedProblem',
      'QuorumEvent',
      'ReplicationPointOptions',
      'ReplicationPointsInit',
      'RpEvents',
      'RpMemberServiceInit',
      'RpPublishOptions',
      'RpServiceComponents',
      'RpServiceInit',
      'RpView',
    ],
  },
  './broker': {
    source: 'src/broker/index.ts',
    values: [
      'BROKER_TOPIC',
      'BlsKeyPair',
      'Broker',
      'BrokerClient',
      'BrokerDissemination',
      'BrokerNode',
      'ClientNode',
      'DEFAULT_BROKER_LIMITS',
      'Directory',
      'Ed25519KeyPair',
      'InlineAuthenticator',
      'ServerNode',
      'SingleSequencer',
      'ThreadpoolAuthenticator',
      'WitnessServer',
      'WorkerAuthenticator',
      'brokerLimits',
      'brokerMessageId',
      'faultsTolerated',
    ],
    types: [
      'BatchFault',
      'BatchReference',
      'BrokerClientOptions',
      'BrokerCounters',
      'BrokerDelivery',
      'BrokerDisseminationOptions',
      'BrokerEvents',
      'BrokerLimits',
      'BrokerNodeOptions',
      'BrokerOptions',
      'ClientNodeOptions',
      'ClientRegistration',
      'DeliveryReceipt',
      'OrderedListener',
      'Orderer',
      'ServerNodeOptions',
      'SubmissionAuthenticator',
      'UdpEndpointOptions',
      'WitnessServerCounters',
      'WitnessServerEvents',
      'WitnessServerOptions',
    ],
  },
  './sim': {
    source: 'src/sim/index.ts',
    values: [
      'DeliveryTracker',
      'Prng',
      'SCENARIOS',
      'SCENARIO_TOPIC',
      'STRATEGIES',
      'Simulation',
      'brokerSimStrategy',
      'brokerStrategy',
      'buildNetwork',
      'findStrategy',
      'floodStrategy',
      'fullMeshGraph',
      'gossipOneCopyStrategy',
      'gossipOptimizedStrategy',
      'gossipStockStrategy',
      'gossipStrategy',
      'graphFromEdges',
      'placementBandwidth',
      'placementLatency',
      'providerClusteredPlacement',
      'randomRegularGraph',
      'rpSimStrategy',
      'rpStrategy',
      'runScenario',
      'scheduleChurn',
      'singleRegionPlacement',
      'startScenario',
      'uniformLatency',
    ],
    types: [
      'BrokerSimOptions',
      'BuiltNetwork',
      'ChurnLog',
      'ChurnOptions',
      'CoreFactory',
      'CoreObserver',
      'DeliverySummary',
      'Distribution',
      'Graph',
      'LatencyFn',
      'NetworkOptions',
      'Placement',
      'Provider',
      'Region',
      'RpSimOptions',
      'RunOptions',
      'Scenario',
      'ScenarioResult',
      'ScenarioRun',
      'SimCore',
      'SimStrategy',
      'StrategyContext',
      'TopologyKind',
      'TrafficCounters',
      'UplinkRange',
    ],
  },
}

/** Entry points a user without BLS (gossip, flooding, RP, or just the types) imports. */
const WITHOUT_BLST = ['.', './flood', './gossip', './rp']

const sorted = (names: Iterable<string>) => [...names].sort()

interface Probe {
  loaded: string[]
  exports: string[]
}

/** Imports `source` in a fresh Node process (the project's, which runs .ts) and reports what it loaded. */
async function probe(source: string): Promise<Probe> {
  const { stdout } = await run(process.execPath, [PROBE, source], { cwd: ROOT })
  return JSON.parse(stdout) as Probe
}

const isBlst = (url: string) => url.includes('/node_modules/@chainsafe/blst')

describe('package entry points', () => {
  it('package.json maps exactly these subpaths onto the compiled entry files, free of side effects', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.sideEffects).toBe(false)
    expect(sorted(Object.keys(pkg.exports))).toEqual(sorted(Object.keys(SURFACE)))
    for (const [subpath, { source }] of Object.entries(SURFACE)) {
      const compiled = `./dist/${source.slice('src/'.length, -'.ts'.length)}`
      expect(pkg.exports[subpath], subpath).toEqual({
        types: `${compiled}.d.ts`,
        import: `${compiled}.js`,
      })
    }
  })

  for (const [subpath, { source, values }] of Object.entries(SURFACE)) {
    it(`${subpath} (${source}) exports exactly its listed values in a fresh process`, async () => {
      const { loaded, exports } = await probe(source)
      expect(loaded).toContain(fileUrl(source))
      if (WITHOUT_BLST.includes(subpath)) expect(loaded.filter(isBlst)).toEqual([])
      expect(exports).toEqual(sorted(values))
    })
  }

  it('the probe sees the native BLS addon when an entry point does load it', async () => {
    const { loaded } = await probe(SURFACE['./broker'].source)
    expect(loaded.filter(isBlst).some((url) => url.endsWith('.node'))).toBe(true)
  })

  it('the root entry point loads the shared core only: no strategy, no dependency', async () => {
    const { loaded } = await probe(SURFACE['.'].source)
    const outside = loaded.filter(
      (url) =>
        !url.startsWith('node:') &&
        url !== fileUrl('src/index.ts') &&
        !url.startsWith(fileUrl('src/common/')),
    )
    expect(outside).toEqual([])
  })

  it('every exported name, type or value, is listed and documented', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(ROOT, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    )
    if (config === undefined) throw new Error('tsconfig.json did not parse')
    const sources = Object.values(SURFACE).map((e) => join(ROOT, e.source))
    const program = ts.createProgram(sources, config.options)
    const checker = program.getTypeChecker()
    const undocumented: string[] = []
    for (const [subpath, { source, values, types }] of Object.entries(SURFACE)) {
      const file = program.getSourceFile(join(ROOT, source))
      const moduleSymbol = file && checker.getSymbolAtLocation(file)
      if (moduleSymbol === undefined) throw new Error(`${source} has no module symbol`)
      const exported = checker.getExportsOfModule(moduleSymbol)
      expect(sorted(exported.map((s) => s.name)), subpath).toEqual(sorted([...values, ...types]))
      for (const symbol of exported) {
        const target =
          symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
        const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim()
        if (doc === '') undocumented.push(`${subpath}: ${symbol.name}`)
      }
    }
    expect(undocumented).toEqual([])
  }, 60_000)
})
