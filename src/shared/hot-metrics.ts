/**
 * prom-client counters and histograms for the per-request path. prom-client's own `inc` and
 * `observe` (its `labels()` children too) validate and hash the label object on every call:
 * ~3–5 µs of a direct request's ~45 µs of gateway CPU. Here a series (one label combination)
 * is made once, by `series(labels)`, and then counts in plain numbers; the metric reads its
 * series when scraped and prints them exactly as prom-client would (a test holds it to that).
 * Anything counted through the inherited `inc`/`observe` is printed as well.
 */
import { Counter, Histogram, type CounterConfiguration, type HistogramConfiguration, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';

export interface CounterSeries {
  inc(): void;
}

export interface HistogramSeries {
  observe(value: number): void;
}

type Labels<T extends string> = LabelValues<T> & Record<T, string | number>;

interface CountedSeries<T extends string> extends CounterSeries {
  readonly labels: Labels<T>;
  value: number;
}

/** One key per label combination, whatever the order the labels were given in. */
const keyOf = (labels: Record<string, string | number>) => JSON.stringify(Object.keys(labels).sort().map((k) => [k, String(labels[k])]));

/** The series of `labels` in `known` (insertion order is printing order), made by `make` the first time. */
function seriesIn<S>(known: Map<string, S>, labels: Record<string, string | number>, make: () => S): S {
  const key = keyOf(labels);
  let series = known.get(key);
  if (!series) known.set(key, (series = make()));
  return series;
}

export class HotCounter<T extends string> extends Counter<T> {
  private readonly hot = new Map<string, CountedSeries<T>>();

  constructor(config: CounterConfiguration<T>) {
    super(config);
  }

  /** The counter of these labels (the same one for the same labels): look it up once, then `inc()`. */
  series(labels: Labels<T>): CounterSeries {
    return seriesIn(this.hot, labels, () => {
      const made: CountedSeries<T> = { labels: { ...labels }, value: 0, inc: () => void made.value++ };
      return made;
    });
  }

  override async get() {
    const data = await super.get();
    return { ...data, values: [...data.values, ...[...this.hot.values()].filter((s) => s.value > 0).map((s) => ({ labels: s.labels, value: s.value }))] };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before this class's fields exist.
    for (const s of this.hot?.values() ?? []) s.value = 0;
  }
}

/** A value as prom-client's registry prints it: the series' labels go as `sharedLabels`, after `le`. */
type PrintedValue = MetricValueWithName<string> & { sharedLabels?: Record<string, string | number>; exemplar?: null | undefined };

// The registry prints a metric's getForPromString() when it has one, as Histogram does (untyped).
type PromStringSource = { getForPromString(): Promise<MetricObjectWithValues<PrintedValue>> };
const histogramForPromString = (Histogram.prototype as unknown as PromStringSource).getForPromString;

interface ObservedSeries<T extends string> extends HistogramSeries {
  readonly labels: Labels<T>;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export class HotHistogram<T extends string> extends Histogram<T> {
  private readonly hot = new Map<string, ObservedSeries<T>>();
  private readonly bounds: readonly number[];
  private readonly metricName: string;

  constructor(config: HistogramConfiguration<T> & { readonly buckets: readonly number[] }) {
    super({ ...config, buckets: [...config.buckets] });
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.metricName = config.name;
  }

  /** The histogram of these labels (the same one for the same labels): look it up once, then `observe()`. */
  series(labels: Labels<T>): HistogramSeries {
    return seriesIn(this.hot, labels, () => this.made(labels));
  }

  private made(labels: Labels<T>): ObservedSeries<T> {
    const bounds = this.bounds;
    const made: ObservedSeries<T> = {
      labels: { ...labels },
      buckets: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
      observe(value: number) {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        made.buckets[i]!++;
        made.sum += value;
        made.count++;
      },
    };
    return made;
  }

  // prom-client prints getForPromString() (bucket bounds as `le` first, then the series' labels
  // as shared labels) and answers JSON from get() (the same values, labels merged).
  async getForPromString(): Promise<MetricObjectWithValues<PrintedValue>> {
    const data = await histogramForPromString.call(this);
    const bucketName = `${this.metricName}_bucket`;
    const values: PrintedValue[] = [...data.values];
    for (const s of this.hot.values()) {
      if (s.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.buckets[i]!;
        values.push({ labels: { le: bound }, sharedLabels: s.labels, value: cumulative, metricName: bucketName, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucketName, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.metricName}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.metricName}_count`, exemplar: undefined },
      );
    }
    return { ...data, values };
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, ...value }) => ({ ...value, labels: { ...value.labels, ...sharedLabels } as LabelValues<T> })),
    };
  }

  override reset(): void {
    super.reset();
    for (const s of this.hot?.values() ?? []) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

/**
 * What a request path keeps per label combination (its series), found by the label values
 * themselves in nested maps: a key joined from them (`${a} ${b} ${c}`) is a new string to flatten
 * and hash on every request, where these values (methods, routes, codes, targets) are a few
 * constant strings and numbers whose hashes V8 keeps.
 */
export class SeriesCache<V> {
  private readonly byFirst = new Map<string | number, Map<string | number, Map<string | number, V>>>();

  get(a: string | number, b: string | number, c: string | number, make: () => V): V {
    let second = this.byFirst.get(a);
    if (!second) this.byFirst.set(a, (second = new Map()));
    let third = second.get(b);
    if (!third) second.set(b, (third = new Map()));
    let value = third.get(c);
    if (value === undefined) third.set(c, (value = make()));
    return value;
  }
}
