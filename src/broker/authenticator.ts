import { verify } from 'node:crypto'
import { ED25519_SIGNATURE_LENGTH, verifyEd25519Prepared } from '../crypto/ed25519.ts'
import type { Directory } from './directory.ts'
import { submissionInput } from './signing.ts'
import type { Submission } from './wire.ts'

/**
 * Checks the ed25519 signatures of a burst of submissions. The broker core calls it once
 * per burst; implementations may verify on the calling thread or in worker threads.
 */
export interface SubmissionAuthenticator {
  /** One verdict per submission, in order (ids are already known to be registered). */
  authenticate(submissions: readonly Submission[]): boolean[] | Promise<boolean[]>
  /** Releases threads, if any. */
  close(): Promise<void>
}

/** Verifies on the calling thread with node:crypto and the directory's prepared keys. */
export class InlineAuthenticator implements SubmissionAuthenticator {
  private readonly directory: Directory

  constructor(directory: Directory) {
    this.directory = directory
  }

  authenticate(submissions: readonly Submission[]): boolean[] {
    return submissions.map((s) =>
      verifyEd25519Prepared(
        this.directory.ed25519Key(s.id),
        submissionInput(s.id, s.sequence, s.payload),
        s.signature,
      ),
    )
  }

  async close(): Promise<void> {}
}

/**
 * Verifies with node:crypto's asynchronous (callback) API, which runs each check on libuv's
 * threadpool (UV_THREADPOOL_SIZE threads): parallel without worker_threads.
 */
export class ThreadpoolAuthenticator implements SubmissionAuthenticator {
  private readonly directory: Directory

  constructor(directory: Directory) {
    this.directory = directory
  }

  authenticate(submissions: readonly Submission[]): Promise<boolean[]> {
    return Promise.all(
      submissions.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            if (s.signature.length !== ED25519_SIGNATURE_LENGTH) {
              resolve(false)
              return
            }
            const input = submissionInput(s.id, s.sequence, s.payload)
            verify(null, input, this.directory.ed25519Key(s.id), s.signature, (err, ok) =>
              resolve(err === null && ok),
            )
          }),
      ),
    )
  }

  async close(): Promise<void> {}
}
