import { createSocket, type Socket } from 'node:dgram'
import type { PeerKey } from '../common/artifact.ts'
import type { Env } from '../common/env.ts'
import { monotonicNow, nodeTimer } from '../common/system-clock.ts'

/** How to bind one UDP socket. */
export interface UdpSocketOptions {
  host: string
  port: number
  /** IPv6 socket. Default false. */
  ipv6?: boolean
  /** SO_REUSEPORT, for several sockets on one port. */
  reusePort: boolean
  recvBufferSize?: number
  sendBufferSize?: number
}

/** Binds one UDP socket, rejecting with the socket's error if it cannot. */
export async function bindUdpSocket(o: UdpSocketOptions): Promise<Socket> {
  const socket = createSocket({
    type: o.ipv6 ? 'udp6' : 'udp4',
    reusePort: o.reusePort,
    recvBufferSize: o.recvBufferSize,
    sendBufferSize: o.sendBufferSize,
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(o.port, o.host, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  return socket
}

/** "host:port" → [host, port] (the last colon splits, so IPv6 hosts keep theirs). */
export function splitHostPort(peer: PeerKey): [string, number] {
  const colon = peer.lastIndexOf(':')
  return [peer.slice(0, colon), Number(peer.slice(colon + 1))]
}

/** An {@link Env} on the system clock whose `send` is `send`, for a core behind an endpoint. */
export function endpointEnv(self: PeerKey, send: Env['send']): Env {
  return { self, now: monotonicNow, send, setTimer: nodeTimer, random: Math.random }
}
