import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The project's pinned Node (the npm package `node`), which runs .ts files directly. */
const NODE = `${ROOT}node_modules/.bin/node`
const CLI = `${ROOT}src/cli/node.ts`

/**
 * `consensus-multicast node` in a process of its own, as a user runs it: its stdout lines
 * are collected, and tests wait for a line to appear (an event), never for a fixed time.
 */
export class NodeProcess {
  /** The child process. */
  readonly proc: ChildProcess
  /** Every stdout line so far. */
  readonly lines: string[] = []
  private stderr = ''
  private readonly waiters = new Set<() => void>()
  private exited = false

  constructor(args: string[], options: { stdin?: boolean } = {}) {
    this.proc = spawn(NODE, [CLI, ...args], {
      cwd: ROOT,
      stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    })
    if (this.proc.stdout === null || this.proc.stderr === null) throw new Error('no pipes')
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      this.lines.push(line)
      this.wake()
    })
    this.proc.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000)
    })
    this.proc.once('exit', () => {
      this.exited = true
      this.wake()
    })
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  /**
   * The first stdout line (from the start) that `match` accepts; rejects after `timeoutMs`
   * or when the process exits first, with its last output to say why.
   */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const check = () => {
        const line = this.lines.find(match)
        if (line === undefined && !this.exited) return
        this.waiters.delete(check)
        clearTimeout(timer)
        if (line !== undefined) resolve(line)
        else reject(new Error(`node exited before ${what}:\n${this.tail()}`))
      }
      timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.tail()}`))
      }, timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  /** The value of `key=` on a line (up to the next space). */
  static field(line: string, key: string): string | undefined {
    return line
      .split(' ')
      .find((f) => f.startsWith(`${key}=`))
      ?.slice(key.length + 1)
  }

  /** The address the node printed (`listening <multiaddr>`), with its peer id. */
  async address(timeoutMs: number): Promise<string> {
    const line = await this.waitForLine((l) => l.startsWith('listening '), timeoutMs, 'its address')
    return line.slice('listening '.length)
  }

  /** Writes one line to the node's stdin (it publishes it). */
  writeLine(text: string): void {
    this.proc.stdin?.write(`${text}\n`)
  }

  /** Its exit code, once it exits (bounded by `timeoutMs`). */
  async exitCode(timeoutMs: number): Promise<number | null> {
    if (!this.exited) {
      await Promise.race([
        once(this.proc, 'exit'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms`)), timeoutMs),
        ),
      ])
    }
    return this.proc.exitCode
  }

  /** Stops it (SIGTERM, then SIGKILL if it has not exited within `timeoutMs`). */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.exited) return
    this.proc.kill('SIGTERM')
    try {
      await this.exitCode(timeoutMs)
    } catch {
      this.proc.kill('SIGKILL')
    }
  }

  /** Its last output, for failure messages. */
  tail(): string {
    return `stdout:\n${this.lines.slice(-15).join('\n')}\nstderr:\n${this.stderr}`
  }
}
