// Small DOM and formatting helpers shared by the panels.

export function setBadge(badge, tone, text) {
  badge.className = `badge ${tone}`;
  badge.textContent = text;
}

/** 0 → "–", 850 → "0.9 s", 75000 → "1 min 15 s". */
export function formatAge(ms) {
  if (typeof ms !== 'number' || ms <= 0) return '–';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `el('p', { class: 'x' }, 'text', child)`: the only way this page builds DOM, never via innerHTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** Local wall-clock time of an epoch-ms instant, `14:03:07`. */
export function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** A number as the gateway sent it, without float noise such as 0.30000000000000004. */
export function formatNumber(value) {
  if (typeof value !== 'number') return String(value);
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
}
