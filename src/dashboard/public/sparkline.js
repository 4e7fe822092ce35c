// A tiny inline SVG sparkline: an area and a line over the last samples, scaled to their maximum.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 120;
const HEIGHT = 32;
const PAD = 2;

/** Creates an empty sparkline; `update(samples)` redraws it. `label(samples)` names it for screen readers. */
export function createSparkline(capacity, label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('class', 'spark');
  const baseline = document.createElementNS(SVG, 'line');
  baseline.setAttribute('x1', '0');
  baseline.setAttribute('x2', String(WIDTH));
  baseline.setAttribute('y1', String(HEIGHT - PAD));
  baseline.setAttribute('y2', String(HEIGHT - PAD));
  baseline.setAttribute('class', 'spark-base');
  const area = document.createElementNS(SVG, 'path');
  area.setAttribute('class', 'spark-area');
  const line = document.createElementNS(SVG, 'path');
  line.setAttribute('class', 'spark-line');
  svg.append(baseline, area, line);

  function update(samples) {
    svg.setAttribute('aria-label', label(samples));
    const known = samples.filter((v) => typeof v === 'number');
    if (known.length === 0) {
      area.setAttribute('d', '');
      line.setAttribute('d', '');
      return;
    }
    const max = Math.max(1, ...known);
    const step = WIDTH / Math.max(1, capacity - 1);
    // Right-aligned: the newest sample sits at the right edge, older ones scroll left.
    const offset = capacity - samples.length;
    let d = '';
    let first;
    let last;
    samples.forEach((value, i) => {
      if (typeof value !== 'number') return;
      const x = ((offset + i) * step).toFixed(1);
      const y = (HEIGHT - PAD - (value / max) * (HEIGHT - 2 * PAD)).toFixed(1);
      d += `${d ? 'L' : 'M'}${x},${y}`;
      first ??= x;
      last = x;
    });
    line.setAttribute('d', d);
    area.setAttribute('d', `${d}L${last},${HEIGHT - PAD}L${first},${HEIGHT - PAD}Z`);
  }

  return { element: svg, update };
}
