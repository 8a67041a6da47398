import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

/** One line a host prints. */
export type Event = Record<string, unknown> & { event: string }

/**
 * A child process running `script` with the pinned Node inside network namespace `ns`; it
 * prints one JSON event per line on stdout and reads JSON commands, one per line, on stdin.
 */
export class NetnsProcess {
  /** Every event printed so far. */
  readonly events: Event[] = []
  /** Every line of stderr so far. */
  readonly stderr: string[] = []
  private waiters: { match: (e: Event) => boolean; resolve: (e: Event) => void }[] = []
  /** The `ip netns exec` process. */
  readonly child: ChildProcess

  constructor(ns: string, node: string, script: string, env: Record<string, string>) {
    this.child = spawn('ip', ['netns', 'exec', ns, node, script], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as Event
      this.events.push(e)
      const matched = this.waiters.filter((w) => w.match(e))
      this.waiters = this.waiters.filter((w) => !w.match(e))
      for (const w of matched) w.resolve(e)
    })
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line))
  }

  /** The first event named `name` (past or future), or a rejection after `ms`. */
  next(name: string, ms = 20_000): Promise<Event> {
    return this.first((e) => e.event === name, name, ms)
  }

  /** The first event `match` holds for (past or future), or a rejection after `ms`. */
  first(match: (e: Event) => boolean, name: string, ms = 20_000): Promise<Event> {
    const seen = this.events.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no "${name}" within ${ms} ms; last events: ${JSON.stringify(this.events.slice(-4))}; stderr: ${this.stderr.join('\n')}`,
            ),
          ),
        ms,
      )
      const onExit = () =>
        reject(new Error(`host exited before "${name}"; stderr: ${this.stderr.join('\n')}`))
      this.child.once('exit', onExit)
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer)
          this.child.off('exit', onExit)
          resolve(e)
        },
      })
    })
  }

  /** Sends a command; for `stats` and `counters`, waits for the answer. */
  async command(cmd: { cmd: string } & Record<string, unknown>): Promise<Event | undefined> {
    const answered = cmd.cmd === 'stats' || cmd.cmd === 'counters'
    this.events.splice(0, this.events.length, ...this.events.filter((e) => e.event !== cmd.cmd))
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`)
    return answered ? this.next(cmd.cmd) : undefined
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL')
  }
}
