/**
 * Typed errors. Every error this library throws is a {@link ConsensusMulticastError}
 * with a stable `code`, so callers can branch on the code instead of the message.
 */

/** Stable error codes, one per failure kind. */
export type ErrorCode =
  | 'ERR_INVALID_PARAMETERS'
  | 'ERR_DECODE'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_NOT_SUBSCRIBED'
  | 'ERR_NO_PEERS'
  | 'ERR_DUPLICATE'
  | 'ERR_VALIDATION'
  | 'ERR_SIGNATURE'
  | 'ERR_REPLAY'
  | 'ERR_NOT_STARTED'
  | 'ERR_LIMIT'
  | 'ERR_TIMEOUT'

/** Base class of every error thrown by consensus-multicast. */
export class ConsensusMulticastError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A configuration is impossible or out of range (e.g. `Dlo > D`). */
export class InvalidParametersError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_INVALID_PARAMETERS', message)
  }
}

/** Bytes received from a peer could not be decoded: malformed, truncated or over a limit. */
export class DecodeError extends ConsensusMulticastError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DECODE', message, options)
  }
}

/** A payload or frame is larger than the configured maximum. */
export class MessageTooLargeError extends ConsensusMulticastError {
  /** The size that was offered, in bytes. */
  readonly size: number
  /** The configured maximum, in bytes. */
  readonly limit: number

  constructor(size: number, limit: number) {
    super('ERR_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit} bytes`)
    this.size = size
    this.limit = limit
  }
}

/** An operation needs a subscription (or registration) the node does not have. */
export class NotSubscribedError extends ConsensusMulticastError {
  constructor(topic: string) {
    super('ERR_NOT_SUBSCRIBED', `not subscribed to topic "${topic}"`)
  }
}

/** A publish found no peer to send to. */
export class NoPeersError extends ConsensusMulticastError {
  constructor(topic: string) {
    super('ERR_NO_PEERS', `no peers to publish topic "${topic}" to`)
  }
}

/** The same message was published twice. */
export class DuplicateMessageError extends ConsensusMulticastError {
  constructor(id: string) {
    super('ERR_DUPLICATE', `message ${id} was already published or seen`)
  }
}

/** A message failed validation (the validator rejected it). */
export class ValidationError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_VALIDATION', message)
  }
}

/** A signature did not verify. */
export class SignatureError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_SIGNATURE', message)
  }
}

/** A message was replayed (already delivered or superseded). */
export class ReplayError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_REPLAY', message)
  }
}

/** The component was used before `start()` or after `stop()`. */
export class NotStartedError extends ConsensusMulticastError {
  constructor(what: string) {
    super('ERR_NOT_STARTED', `${what} is not started`)
  }
}

/** A bounded queue, cache or rate limit is full. */
export class LimitExceededError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_LIMIT', message)
  }
}

/** An operation did not complete in time. */
export class TimeoutError extends ConsensusMulticastError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message)
  }
}
