/**
 * A small strict parser of the Prometheus text exposition format (version
 * 0.0.4), for what scrapes /metrics (the tests, `twopc bench`): every line must be a HELP, a TYPE or
 * a sample of a family whose TYPE came first; label values are unescaped;
 * a series appears once; a histogram's buckets are cumulative, end at +Inf,
 * and +Inf equals its _count. Anything else throws, naming the line.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SUFFIXES = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] } as const;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    const name = text.slice(i, eq);
    if (eq < 0 || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || text[eq + 1] !== '"') throw new Error(`bad label in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== '\\') {
        value += text[j];
        continue;
      }
      const next = text[++j];
      if (next === 'n') value += '\n';
      else if (next === '\\' || next === '"') value += next;
      else throw new Error(`bad escape in: ${line}`);
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    if (Object.hasOwn(labels, name)) throw new Error(`label ${name} twice in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

function familyOf(families: Map<string, Family>, sample: string, line: string): Family {
  for (const [name, f] of families) {
    const suffixes = f.type === 'histogram' || f.type === 'summary' ? SUFFIXES[f.type] : [''];
    if (suffixes.some((s) => sample === name + s)) return f;
  }
  throw new Error(`sample before its TYPE: ${line}`);
}

function parseSample(line: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
  if (m === null) throw new Error(`malformed sample: ${line}`);
  const raw = m[3] as string;
  // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan".
  const special: Record<string, number> = { '+inf': Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN };
  const lower = raw.toLowerCase();
  const value = Object.hasOwn(special, lower) ? (special[lower] as number) : Number(raw);
  if (Number.isNaN(value) && lower !== 'nan') throw new Error(`bad value in: ${line}`);
  return { name: m[1] as string, labels: parseLabels(m[2] ?? '', line), value };
}

function checkHistogram(f: Family): void {
  const series = new Map<string, Sample[]>();
  for (const s of f.samples.filter((x) => x.name.endsWith('_bucket'))) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, buckets] of series) {
    const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
    if (bounds.at(-1) !== Infinity) throw new Error(`${f.name}${key}: buckets do not end at +Inf`);
    for (let i = 1; i < buckets.length; i++) {
      if (!((bounds[i] as number) > (bounds[i - 1] as number)) || (buckets[i] as Sample).value < (buckets[i - 1] as Sample).value) {
        throw new Error(`${f.name}${key}: buckets not increasing and cumulative`);
      }
    }
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === key);
    if (count?.value !== (buckets.at(-1) as Sample).value) throw new Error(`${f.name}${key}: +Inf bucket is not _count`);
  }
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type: ${line}`);
        if (families.has(name) && families.get(name)?.samples.length !== 0) throw new Error(`TYPE after samples: ${line}`);
        families.set(name, { name, type: rest as Family['type'], help: families.get(name)?.help ?? '', samples: [] });
      } else {
        const f = families.get(name);
        if (f) f.help = rest;
        else families.set(name, { name, type: 'untyped', help: rest, samples: [] });
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = parseSample(line);
    const key = `${sample.name}${JSON.stringify(sample.labels)}`;
    if (seen.has(key)) throw new Error(`series twice: ${line}`);
    seen.add(key);
    familyOf(families, sample.name, line).samples.push(sample);
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The value of one series (0 when absent), matching the labels given (others may differ only if `labels` leaves them out). */
export function valueOf(families: Map<string, Family>, family: string, sample: string, labels: Readonly<Record<string, string>> = {}): number {
  const f = families.get(family);
  const s = f?.samples.find((x) => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}
