// A bar chart as inline SVG (built with DOM calls, so the CSP needs no inline anything), with
// the same figures in a table for screen readers.

import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  for (const child of children) if (child) element.append(child);
  return element;
}

/** The axis' top: 1–5 as whole numbers, above that 1, 2, … 10 times a power of ten. */
function niceMax(value) {
  if (value <= 5) return Math.max(1, Math.ceil(value));
  const power = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / power) * power;
}

function tick(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** Bars of `points` ([{label, value}]) titled `title`, values in `unit`. */
export function barChart(title, points, unit) {
  const width = 640;
  const height = 220;
  const pad = { top: 16, right: 12, bottom: 36, left: 48 };
  const max = niceMax(Math.max(0, ...points.map((p) => p.value)));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const step = innerW / Math.max(1, points.length);
  const bar = Math.min(48, Math.max(4, step * 0.6));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': `${title}, by month` },
    svg('title', {}, document.createTextNode(title)));
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + innerH * (1 - fraction);
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    chart.append(svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' },
      document.createTextNode(tick(max * fraction))));
  }
  points.forEach((point, index) => {
    const barH = innerH * (point.value / max);
    const x = pad.left + step * index + (step - bar) / 2;
    chart.append(svg('rect', { x, y: pad.top + innerH - barH, width: bar, height: Math.max(barH, point.value > 0 ? 1 : 0), class: 'bar' },
      svg('title', {}, document.createTextNode(`${point.label}: ${point.value} ${unit}`))));
    chart.append(svg('text', { x: x + bar / 2, y: height - pad.bottom + 16, 'text-anchor': 'middle', class: 'axis' },
      document.createTextNode(point.label)));
  });
  const data = h('table', { class: 'sr-only' }, h('caption', {}, title),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Month'), h('th', { scope: 'col' }, unit))),
    h('tbody', {}, points.map((p) => h('tr', {}, h('td', {}, p.label), h('td', {}, String(p.value))))));
  return h('figure', { class: 'figure' }, chart, h('figcaption', {}, title), data);
}
