import type { ArtifactClass } from '../../src/common/artifact.ts'
import type { Scenario } from '../../src/sim/scenario.ts'

/**
 * The scenario of `npm run bench -- gossip-sim`: `nodes` nodes with 50 peers each,
 * provider-clustered placement, latency and bandwidth, `messages` messages of `bytes` every
 * 250 ms after a 5 s warm-up. The one-copy hindsight experiment runs the very same one.
 */
export function gossipSimScenario(
  name: string,
  nodes: number,
  bytes: number,
  cls: ArtifactClass,
  seed: number,
  messages: number,
  over: Partial<Scenario> = {},
): Scenario {
  return {
    name,
    description: name,
    nodes,
    topology: 'provider-clustered',
    degree: 50,
    latencyMs: 0,
    bandwidth: 'placement',
    loss: 0,
    messages,
    messageBytes: bytes,
    class: cls,
    intervalMs: 250,
    warmupMs: 5000,
    drainMs: 5000,
    seed,
    ...over,
  }
}
