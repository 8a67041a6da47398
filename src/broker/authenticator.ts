import { verifyEd25519Prepared } from '../crypto/ed25519.ts'
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
