import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cdfSpec, renderSvg } from '../../report/charts.ts'
import { measure, type RunResult } from '../../report/measure.ts'
import { reportScenarios } from '../../report/plan.ts'
import { writeReport } from '../../report/write.ts'
import { floodStrategy } from '../../src/sim/flood-strategy.ts'
import { rpSimStrategy } from '../../src/sim/rp-strategy.ts'
import type { Scenario } from '../../src/sim/scenario.ts'

/** One XML element as parsed: name, attributes, children and text. */
interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

/**
 * A strict parser for the XML subset SVG uses (elements, quoted attributes, text, the five
 * predefined entities and numeric references, comments): throws on anything malformed, such
 * as mismatched or unclosed tags, unquoted attributes or a bare `&`.
 */
function parseXml(src: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' }
  const stack = [root]
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y
  const checkText = (text: string) => {
    for (let i = text.indexOf('&'); i >= 0; i = text.indexOf('&', i + 1)) {
      entity.lastIndex = i
      if (!entity.test(text)) throw new Error(`bad entity at ${text.slice(i, i + 10)}`)
    }
    if (text.includes('<')) throw new Error('stray <')
  }
  let i = 0
  while (i < src.length) {
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i)
      if (end < 0) throw new Error('unclosed comment')
      i = end + 3
    } else if (src.startsWith('</', i)) {
      const end = src.indexOf('>', i)
      const name = src.slice(i + 2, end).trim()
      const open = stack.pop()
      if (open === undefined || open.name !== name) throw new Error(`mismatched </${name}>`)
      i = end + 1
    } else if (src[i] === '<') {
      const m = /^<([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/.exec(src.slice(i))
      if (m === null) throw new Error(`malformed tag at ${src.slice(i, i + 40)}`)
      const attrs: Record<string, string> = {}
      for (const a of m[2].matchAll(/([\w:.-]+)="([^"]*)"/g)) {
        if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`)
        checkText(a[2])
        attrs[a[1]] = a[2]
      }
      const el: XmlElement = { name: m[1], attrs, children: [], text: '' }
      stack[stack.length - 1].children.push(el)
      if (m[3] !== '/') stack.push(el)
      i += m[0].length
    } else {
      const end = src.indexOf('<', i)
      const text = src.slice(i, end < 0 ? src.length : end)
      checkText(text)
      stack[stack.length - 1].text += text
      i = end < 0 ? src.length : end
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`)
  const elements = root.children
  if (elements.length !== 1 || root.text.trim() !== '') throw new Error('not one root element')
  return elements[0]
}

function all(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap(all)]
}

function texts(el: XmlElement): string[] {
  return all(el)
    .filter((e) => e.name === 'text')
    .map((e) => e.text)
}

function checkSvg(svg: string): XmlElement {
  const root = parseXml(svg)
  expect(root.name).toBe('svg')
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg')
  expect(Number(root.attrs.width)).toBeGreaterThan(100)
  expect(Number(root.attrs.height)).toBeGreaterThan(0)
  return root
}

describe('report charts', () => {
  it('the XML check rejects malformed documents', () => {
    expect(() => parseXml('<svg><g></svg>')).toThrow()
    expect(() => parseXml('<svg a=1></svg>')).toThrow()
    expect(() => parseXml('<svg>a & b</svg>')).toThrow()
    expect(parseXml('<svg a="x &amp; y"><g/></svg>').children).toHaveLength(1)
  })

  it('renders a latency CDF as SVG with one line per strategy and its labels', async () => {
    const svg = await renderSvg(
      cdfSpec('test CDF', [
        { label: 'alpha', quantiles: [1, 2, 3, 10] },
        { label: 'beta', quantiles: [2, 4, 6, 8] },
      ]),
    )
    const root = checkSvg(svg)
    const lines = all(root).filter((e) => e.attrs['aria-roledescription'] === 'line mark')
    expect(lines).toHaveLength(2)
    for (const l of lines) expect(l.attrs.d).toMatch(/^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+$/)
    const t = texts(root)
    expect(t).toContain('test CDF')
    expect(t).toContain('alpha')
    expect(t).toContain('beta')
    expect(t).toContain('latency since publish (ms)')
  })
})

describe('report pipeline on a small network', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-test-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const tiny: Scenario = {
    ...reportScenarios(true).eth2022,
    nodes: 120,
    degree: 8,
    warmupMs: 3_000,
    drainMs: 1_500,
  }

  it('measures real runs deterministically and writes a README with valid charts', async () => {
    const rp = rpSimStrategy()
    const flood = await measure('eth2022/flood', 'flood', tiny, floodStrategy)
    const again = await measure('eth2022/flood', 'flood', tiny, floodStrategy)
    expect(again).toEqual(flood)
    const rpRun = await measure('eth2022/RP unicast', 'RP unicast', tiny, rp)
    for (const r of [flood, rpRun]) {
      expect(r.deliveryRatio).toBe(1)
      expect(r.cdf.every((x, k) => k === 0 || x >= r.cdf[k - 1])).toBe(true)
      expect(r.majorityMs[0]).toBeLessThanOrEqual(r.reach95Ms[0])
    }
    // Flooding over k peers: every node sends the message to each peer but the sender.
    expect(flood.bytesPerMessage).toBeGreaterThan((tiny.nodes - 1) * (tiny.degree - 1) * 256)
    expect(rpRun.idleBytesPerSecond).toBeGreaterThan(0)
    const results: RunResult[] = [flood, rpRun]
    await writeReport(dir, true, results, ['eth2022/gossip stock'], 1)
    const readme = readFileSync(join(dir, 'README.md'), 'utf8')
    expect(readme).toContain('## Headline')
    expect(readme).toContain('22.44 MB')
    expect(readme).toContain('eth2022/gossip stock')
    const svgs = readdirSync(dir).filter((f) => f.endsWith('.svg'))
    expect(svgs).toContain('eth2022-latency.svg')
    expect(svgs).toContain('setup-bytes.svg')
    for (const f of svgs) {
      expect(readme).toContain(`](${f})`)
      checkSvg(readFileSync(join(dir, f), 'utf8'))
    }
    const latency = checkSvg(readFileSync(join(dir, 'eth2022-latency.svg'), 'utf8'))
    expect(
      all(latency).filter((e) => e.attrs['aria-roledescription'] === 'line mark'),
    ).toHaveLength(2)
    const bytesChart = checkSvg(readFileSync(join(dir, 'eth2022-bytes.svg'), 'utf8'))
    const bars = all(bytesChart).filter((e) => e.attrs['aria-roledescription'] === 'bar')
    // The floor and the two strategies, each a bar of positive width.
    expect(bars).toHaveLength(3)
    for (const b of bars) expect(Number(/h([\d.]+)/.exec(b.attrs.d)?.[1])).toBeGreaterThan(0)
  }, 120_000)
})
