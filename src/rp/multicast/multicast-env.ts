import type { Env } from '../../common/env.ts'

/**
 * The part of the project's `Env` the multicast cores need: time, timers and randomness.
 * Each core adds its own outputs (datagrams to send, messages to deliver) as callbacks, so the
 * cores stay sans-IO: the UDP driver, the RP session and the tests each provide them.
 */
export type MulticastClock = Pick<Env, 'now' | 'setTimer' | 'random'>
