// A bar chart as SVG built with DOM calls (no inline styles: the CSP forbids them).
const NS = 'http://www.w3.org/2000/svg';

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function barChart(title: string, points: { label: string; value: number }[]): Element {
  const w = 560;
  const hgt = 160;
  const pad = 24;
  const max = Math.max(1, ...points.map((p) => p.value));
  const bw = points.length ? (w - pad * 2) / points.length : 0;
  const root = svg('svg', { viewBox: `0 0 ${w} ${hgt + 30}`, role: 'img', 'aria-label': title, class: 'chart' });
  const t = svg('title', {});
  t.textContent = `${title}: ${points.map((p) => `${p.label} ${p.value}`).join(', ') || 'no data'}`;
  root.appendChild(t);
  root.appendChild(svg('line', { x1: pad, y1: hgt, x2: w - pad, y2: hgt, class: 'axis' }));
  points.forEach((p, i) => {
    const bh = Math.round((p.value / max) * (hgt - 20));
    root.appendChild(svg('rect', { x: pad + i * bw + 2, y: hgt - bh, width: Math.max(1, bw - 4), height: bh, class: 'bar' }));
    const v = svg('text', { x: pad + i * bw + bw / 2, y: hgt - bh - 4, 'text-anchor': 'middle', class: 'value' });
    v.textContent = String(p.value);
    root.appendChild(v);
    const l = svg('text', { x: pad + i * bw + bw / 2, y: hgt + 16, 'text-anchor': 'middle', class: 'label' });
    l.textContent = p.label;
    root.appendChild(l);
  });
  return root;
}

/** The last `days` calendar days (UTC) as YYYY-MM-DD, oldest first. */
export function lastDays(days: number, now = new Date()): string[] {
  const out: string[] = [];
  for (let i = days - 1; i >= 0; i--) out.push(new Date(now.getTime() - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}
