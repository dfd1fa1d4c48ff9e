// The valence/arousal plane as SVG: valence on x (-1 left .. 1 right), arousal on y (-1 bottom .. 1 top).
const NS = "http://www.w3.org/2000/svg";
const SIZE = 220, PAD = 10, SPAN = SIZE - 2 * PAD;
const CORNERS = [["excited · happy", 1, 1, "end"], ["tense · angry", -1, 1, "start"],
                 ["sad · gloomy", -1, -1, "start"], ["calm · tender", 1, -1, "end"]];

export const toX = (v) => PAD + (v + 1) / 2 * SPAN;
export const toY = (a) => PAD + (1 - (a + 1) / 2) * SPAN;
const clamp = (x) => Math.max(-1, Math.min(1, x));

export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

export function drawAxes(svg) {
  svg.replaceChildren();
  const clip = el("clipPath", {id: `${svg.id}-clip`}, el("defs", {}, svg));
  el("rect", {x: PAD, y: PAD, width: SPAN, height: SPAN}, clip);
  el("rect", {x: PAD, y: PAD, width: SPAN, height: SPAN, class: "frame"}, svg);
  el("line", {x1: toX(0), y1: PAD, x2: toX(0), y2: SIZE - PAD, class: "axis"}, svg);
  el("line", {x1: PAD, y1: toY(0), x2: SIZE - PAD, y2: toY(0), class: "axis"}, svg);
  for (const [label, v, a, anchor] of CORNERS) {
    const text = el("text", {x: toX(v * 0.95), y: toY(a * 0.9) + (a < 0 ? 4 : 0), "text-anchor": anchor,
                             class: "corner"}, svg);
    text.textContent = label;
  }
  const xLabel = el("text", {x: SIZE - PAD - 2, y: toY(0) - 3, "text-anchor": "end", class: "axis-label"}, svg);
  xLabel.textContent = "valence →";
  const yLabel = el("text", {x: toX(0) + 3, y: PAD + 9, class: "axis-label"}, svg);
  yLabel.textContent = "↑ arousal";
  return el("g", {class: "layer", "clip-path": `url(#${svg.id}-clip)`}, svg);  // nothing drawn past the edge
}

export function pointFromEvent(svg, event) {
  const box = svg.getBoundingClientRect();
  const x = (event.clientX - box.left) / box.width * SIZE, y = (event.clientY - box.top) / box.height * SIZE;
  return {valence: clamp((x - PAD) / SPAN * 2 - 1), arousal: clamp(1 - (y - PAD) / SPAN * 2)};
}

export function drawPath(layer, points, cls) {
  if (!points.length) return;
  const d = points.map((p, i) => `${i ? "L" : "M"}${toX(p.valence).toFixed(1)},${toY(p.arousal).toFixed(1)}`);
  el("path", {d: d.join(" "), class: cls}, layer);
}

export function drawDots(layer, points, cls, titles = []) {
  points.forEach((p, i) => {
    const dot = el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 3, class: cls}, layer);
    if (titles[i]) el("title", {}, dot).textContent = titles[i];
  });
}

export function drawReading(layer, v, a, vStd, aStd) {
  el("ellipse", {cx: toX(v), cy: toY(a), rx: Math.max(2, vStd * SPAN / 2), ry: Math.max(2, aStd * SPAN / 2),
                 class: "spread"}, layer);
  el("circle", {cx: toX(v), cy: toY(a), r: 4, class: "reading"}, layer);
}

export function drawMarker(layer, p, label) {
  const marker = el("g", {class: "emotion-marker"}, layer);
  el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 5}, marker);
  el("title", {}, marker).textContent = label;
}

export function drawCursor(layer, p) {
  el("circle", {cx: toX(p.valence), cy: toY(p.arousal), r: 5, class: "cursor"}, layer);
}

// Time runs from blue to red along a curve.
export function timeColour(i, n) {
  const t = n > 1 ? i / (n - 1) : 0;
  return `hsl(${220 - 220 * t}, 70%, 45%)`;
}
