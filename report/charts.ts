/**
 * The report's charts: vega-lite specs compiled to vega and rendered to SVG without a
 * browser (vega's headless `renderer: 'none'` view).
 */
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'

/** One line of a CDF chart: a strategy's latency quantiles, ascending, in ms. */
export interface CdfLine {
  /** Legend entry. */
  label: string
  /** Latency quantiles (ms), the k-th is the ((k + 1) / length)-th quantile. */
  quantiles: number[]
}

/** One strategy's duplicates histogram. */
export interface DuplicateBars {
  /** Legend entry. */
  label: string
  /** Share of (member, message) pairs with 0, 1, 2, ... duplicates (last: that many or more). */
  counts: number[]
}

/** One bar of a bar chart. */
export interface Bar {
  /** Category. */
  label: string
  /** Value. */
  value: number
}

const WIDTH = 560
const HEIGHT = 300

/** Renders a vega-lite spec to an SVG string. */
export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const compiled = vegaLite.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return `${svg}\n`
}

/** What every chart shares: schema, size, white background, its title and data. */
function frame(title: string, values: object[]) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    data: { values },
  }
}

/**
 * A ProbeLab-style latency CDF: x = ms since publish, y = share of deliveries, one line
 * per strategy.
 */
export function cdfSpec(title: string, lines: CdfLine[]): vegaLite.TopLevelSpec {
  const values = lines.flatMap((l) =>
    l.quantiles.map((ms, k) => ({
      strategy: l.label,
      ms: round(ms),
      share: round((k + 1) / l.quantiles.length),
    })),
  )
  return {
    ...frame(title, values),
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'ms', type: 'quantitative', title: 'latency since publish (ms)' },
      y: {
        field: 'share',
        type: 'quantitative',
        title: 'share of nodes reached',
        axis: { format: '%' },
        scale: { domain: [0, 1] },
      },
      color: { field: 'strategy', type: 'nominal', sort: lines.map((l) => l.label) },
    },
  }
}

/** Duplicates histogram: grouped bars of the share of pairs with k duplicates. */
export function duplicatesSpec(title: string, bars: DuplicateBars[]): vegaLite.TopLevelSpec {
  const values = bars.flatMap((b) => {
    const total = b.counts.reduce((a, c) => a + c, 0) || 1
    return b.counts.map((c, k) => ({
      strategy: b.label,
      duplicates: k === b.counts.length - 1 ? `${k}+` : String(k),
      order: k,
      share: round(c / total),
    }))
  })
  return {
    ...frame(title, values),
    mark: 'bar',
    encoding: {
      x: {
        field: 'duplicates',
        type: 'ordinal',
        sort: { field: 'order' },
        title: 'duplicate copies received per node per message',
      },
      xOffset: { field: 'strategy', sort: bars.map((b) => b.label) },
      y: {
        field: 'share',
        type: 'quantitative',
        title: 'share of nodes',
        axis: { format: '%' },
      },
      color: { field: 'strategy', type: 'nominal', sort: bars.map((b) => b.label) },
    },
  }
}

/** Horizontal bars on a log scale (bytes, times spanning orders of magnitude). */
export function barsSpec(
  title: string,
  unit: string,
  bars: Bar[],
  log = true,
): vegaLite.TopLevelSpec {
  return {
    ...frame(
      title,
      bars.map((b) => ({ label: b.label, value: round(b.value) })),
    ),
    height: { step: 28 },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'label', type: 'nominal', sort: null, title: null },
          x: {
            field: 'value',
            type: 'quantitative',
            title: unit,
            scale: { type: log ? 'symlog' : 'linear' },
          },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4 },
        encoding: {
          y: { field: 'label', type: 'nominal', sort: null },
          x: { field: 'value', type: 'quantitative' },
          text: { field: 'value', type: 'quantitative', format: ',.4~r' },
        },
      },
    ],
  }
}

/** Rounds to 4 significant digits: charts stay byte-identical across float noise. */
function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(4)) : 0
}
