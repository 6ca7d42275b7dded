/**
 * Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and histograms
 * with labels, rendered as `# HELP` / `# TYPE` lines followed by one sample line per series.
 * Histograms expose cumulative `_bucket{le="…"}` series ending in `le="+Inf"`, then `_sum` and `_count`.
 * Label values are escaped as the format requires (backslash, double quote, newline).
 */

export type LabelValues = Readonly<Record<string, string>>;

/** A sample value as the exposition format writes it (Go float syntax for the specials). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Escape a label value: `\` → `\\`, `"` → `\"`, newline → `\n`. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escape HELP text: `\` → `\\`, newline → `\n`. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function labelString(names: readonly string[], values: LabelValues, extra?: [string, string]): string {
  const parts = names.map((n) => `${n}="${escapeLabelValue(values[n] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: LabelValues; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new RangeError(`invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new RangeError(`invalid label name "${l}" on ${name}`);
    }
  }

  /** Unlabelled metrics have their one series from the start (a counter shows 0 before its first event). */
  protected init(): void {
    if (this.labelNames.length === 0) this.stateOf({});
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract fresh(): S;
  protected abstract lines(labels: LabelValues, state: S): string[];

  protected stateOf(labels: LabelValues): S {
    for (const k of Object.keys(labels)) {
      if (!this.labelNames.includes(k)) throw new RangeError(`metric ${this.name} has no label "${k}"`);
    }
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const own: Record<string, string> = {};
      for (const n of this.labelNames) own[n] = labels[n] ?? '';
      s = { labels: own, state: this.fresh() };
      this.series.set(key, s);
    }
    return s.state;
  }

  render(): string {
    this.init();
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, state } of this.series.values()) out.push(...this.lines(labels, state));
    return `${out.join('\n')}\n`;
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric<{ v: number }> {
  readonly type = 'counter' as const;
  protected fresh(): { v: number } {
    return { v: 0 };
  }
  inc(labels: LabelValues = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} can only increase (by ${by})`);
    this.stateOf(labels).v += by;
  }
  get(labels: LabelValues = {}): number {
    return this.stateOf(labels).v;
  }
  protected lines(labels: LabelValues, s: { v: number }): string[] {
    return [`${this.name}${labelString(this.labelNames, labels)} ${formatValue(s.v)}`];
  }
}

/** A value that goes up and down; `collect` (when given) refreshes it just before rendering. */
export class Gauge extends Metric<{ v: number }> {
  readonly type = 'gauge' as const;
  collect?: (g: Gauge) => void;
  protected fresh(): { v: number } {
    return { v: 0 };
  }
  set(labels: LabelValues, v: number): void {
    this.stateOf(labels).v = v;
  }
  get(labels: LabelValues = {}): number {
    return this.stateOf(labels).v;
  }
  override render(): string {
    this.collect?.(this);
    return super.render();
  }
  protected lines(labels: LabelValues, s: { v: number }): string[] {
    return [`${this.name}${labelString(this.labelNames, labels)} ${formatValue(s.v)}`];
  }
}

interface HistogramState {
  /** Non-cumulative counts per bucket; the last slot is the +Inf overflow. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into buckets with upper bounds `buckets` (inclusive, ascending) plus +Inf. */
export class Histogram extends Metric<HistogramState> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) {
      throw new RangeError(`histogram ${name} needs finite, strictly increasing bucket bounds`);
    }
    this.buckets = [...buckets];
  }

  protected fresh(): HistogramState {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  observe(labels: LabelValues, v: number): void {
    const s = this.stateOf(labels);
    let i = 0;
    while (i < this.buckets.length && v > this.buckets[i]) i++;
    s.counts[i]++;
    s.sum += v;
    s.count++;
  }

  /** Count and sum of one series (zeros when never observed). */
  get(labels: LabelValues = {}): { count: number; sum: number; buckets: Array<[number, number]> } {
    const s = this.stateOf(labels);
    let acc = 0;
    const cum: Array<[number, number]> = this.buckets.map((b, i) => [b, (acc += s.counts[i])]);
    cum.push([Infinity, s.count]);
    return { count: s.count, sum: s.sum, buckets: cum };
  }

  protected lines(labels: LabelValues, s: HistogramState): string[] {
    const out: string[] = [];
    let acc = 0;
    this.buckets.forEach((b, i) => {
      acc += s.counts[i];
      out.push(`${this.name}_bucket${labelString(this.labelNames, labels, ['le', formatValue(b)])} ${acc}`);
    });
    out.push(`${this.name}_bucket${labelString(this.labelNames, labels, ['le', '+Inf'])} ${s.count}`);
    out.push(`${this.name}_sum${labelString(this.labelNames, labels)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labelString(this.labelNames, labels)} ${s.count}`);
    return out;
  }
}

/** A set of metrics rendered together, in registration order. */
export class Registry {
  private readonly metrics: Array<Counter | Gauge | Histogram> = [];

  private add<M extends Counter | Gauge | Histogram>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new RangeError(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: (g: Gauge) => void): Gauge {
    const g = new Gauge(name, help, labelNames);
    g.collect = collect;
    return this.add(g);
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames));
  }

  /** The whole exposition (Content-Type `text/plain; version=0.0.4; charset=utf-8`). */
  render(): string {
    return this.metrics.map((m) => m.render()).join('');
  }
}

/** The Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
