// IndexTTS2 node pack, front end: the emotion-mix chart of "IndexTTS2 Emotion from Vector", the
// expected-length readout of "IndexTTS2 T2S Generate" / "IndexTTS2 S2M", only the duration inputs
// of the chosen mode shown, and node widths that fit their titles. Plain JS, public extension API
// only (app.registerExtension, node prototype hooks, widgets). Hidden widgets keep their values and
// are still sent, so a prompt is the same whatever is shown.
import { app } from "../../../scripts/app.js";  // served as /extensions/<pack>/js/indextts2.js
import * as tm from "./timing.js";

const EMOTIONS = ["happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm"];
// official web UI normalisation (indextts2_core.emotion.vectors.WEBUI_BIASES / WEBUI_MAX_TOTAL)
const WEBUI_BIASES = [0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625];
const WEBUI_MAX_TOTAL = 0.8;
const COLORS = ["#f2c14e", "#e4572e", "#4e79a7", "#9c6ade", "#59a14f", "#76b7b2", "#ff9da7", "#bab0ac"];
const CHART_HEIGHT = 120, MARGIN = 15, LINE = 15, FONT = "12px Arial", LABEL_FONT = "10px Arial";
const READOUT = "indextts2_readout", CHART = "indextts2_chart";

// Which duration inputs each mode uses; the others are hidden (never while linked).
export const MODE_INPUTS = {
  IndexTTS2T2SGenerate: { mode: "duration_mode", inputs: { target_tokens: "target tokens", target_seconds: "target seconds" } },
  IndexTTS2S2M: { mode: "duration", inputs: { target_seconds: "target seconds", duration_factor: "auto",
                                             target_frames: "target frames" } },
};

const widget = (node, name) => node.widgets?.find((w) => w.name === name);
const value = (node, name, fallback = 0) => widget(node, name)?.value ?? fallback;
const measure = document.createElement("canvas").getContext("2d");

function textWidth(text, font) {
  measure.font = font;
  return measure.measureText(text).width;
}

// Greedy word wrap to `width` pixels.
function wrap(text, width, font) {
  const lines = [];
  let line = "";
  for (const word of text.split(" ")) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, font) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

// The mix the node will send: weights × alpha (clamped to 0..1, truncated to 4 decimals as the
// official code), optionally after the web UI normalisation.
export function emotionMix(weights, alpha, normalize) {
  let w = weights.map((x) => Math.max(0, Number(x) || 0));
  if (normalize) {
    w = w.map((x, i) => x * WEBUI_BIASES[i]);
    const total = w.reduce((a, b) => a + b, 0);
    if (total > WEBUI_MAX_TOTAL) w = w.map((x) => (x * WEBUI_MAX_TOTAL) / total);
  }
  const a = Math.min(1, Math.max(0, Number(alpha)));
  if (a !== 1) w = w.map((x) => Math.trunc(x * a * 10000) / 10000);
  return w;
}

// Labels in two staggered rows: each one has the width of two bars.
function drawChart(node, ctx, width, y) {
  const weights = EMOTIONS.map((n) => value(node, n));
  const normalize = !!value(node, "normalize", false);
  const alpha = value(node, "alpha", 1);
  const raw = emotionMix(weights, alpha, false);
  const mixed = normalize ? emotionMix(weights, alpha, true) : null;
  const shown = mixed ?? raw;
  const w = width - 2 * MARGIN, h = CHART_HEIGHT - 58, top = y + 4, bar = w / EMOTIONS.length, scale = 1.2;
  const labels = [];
  ctx.save();
  ctx.fillStyle = "rgba(0,0,0,0.25)";
  ctx.fillRect(MARGIN, y, w, CHART_HEIGHT - 4);
  ctx.font = LABEL_FONT;
  ctx.textAlign = "center";
  EMOTIONS.forEach((name, i) => {
    const x = MARGIN + i * bar + 3;
    const hr = (Math.min(raw[i], scale) / scale) * h;
    ctx.fillStyle = COLORS[i] + (mixed ? "55" : "ff");
    ctx.fillRect(x, top + h - hr, bar - 6, hr);
    if (mixed) {
      const hn = (Math.min(mixed[i], scale) / scale) * h;
      ctx.fillStyle = COLORS[i];
      ctx.fillRect(x + (bar - 6) / 4, top + h - hn, (bar - 6) / 2, hn);
    }
    ctx.fillStyle = COLORS[i];
    const ly = top + h + 12 + (i % 2) * 12;
    ctx.fillText(name, x + (bar - 6) / 2, ly);
    labels.push({ text: name, width: ctx.measureText(name).width, room: 2 * bar - 4 });
  });
  const sum = shown.reduce((a, b) => a + b, 0);
  ctx.textAlign = "left";
  ctx.font = LABEL_FONT;
  ctx.fillStyle = sum > 1 ? "#ff8080" : "#bbb";
  const summary = `mix ${sum.toFixed(2)} · speaker's own emotion ${(1 - sum).toFixed(2)}` +
                  (mixed ? " · normalised (solid)" : "");
  ctx.fillText(summary, MARGIN + 4, top + h + 44);
  ctx.restore();
  node.indextts2Chart = { weights: raw, normalized: mixed, labels, summary: { text: summary, width: textWidth(summary, LABEL_FONT), room: w - 8 } };
}

// Expected output length for the node's duration settings, or null when the model decides. Rates:
// the model the node last ran with (sent by the node), IndexTTS-2's before that.
export function durationReadout(node) {
  const t = node.indextts2Timing ?? tm.DEFAULT_TIMING;
  if (node.comfyClass === "IndexTTS2T2SGenerate") {
    const mode = value(node, "duration_mode", "natural");
    if (mode === "target tokens") {
      const n = value(node, "target_tokens", 0);
      const frames = tm.framesForCodes(t, n);
      return `${n} tokens ≈ ${(n / t.codes_per_second).toFixed(2)} s of speech + silences (as one segment: ` +
             `${frames} mel frames = ${tm.framesToSamples(t, frames)} samples)`;
    }
    if (mode === "target seconds") {
      const s = value(node, "target_seconds", 0);
      return `exactly ${s} s = ${tm.samples(t, s)} samples, silences included`;
    }
    return null;
  }
  if (node.comfyClass === "IndexTTS2S2M") {
    const mode = value(node, "duration", "auto");
    if (mode === "target seconds") {
      const s = value(node, "target_seconds", 0);
      return `exactly ${s} s = ${tm.samples(t, s)} samples`;
    }
    if (mode === "target frames") {
      const f = value(node, "target_frames", 0);
      const n = tm.framesToSamples(t, f);
      return `${f} frames = ${n} samples = ${tm.secondsOf(t, n).toFixed(3)} s of speech + silences`;
    }
    return null;
  }
  return null;
}

function readoutLines(node) {
  const text = durationReadout(node);
  return text ? wrap(text, node.size[0] - 2 * MARGIN, FONT) : [];
}

// A canvas widget: the layout gives it its own rows below the other widgets, so nothing (not even
// a multiline text box) covers it. Not serialised: widgets_values and prompts are unchanged.
function readoutWidget(node) {
  return {
    name: READOUT, type: READOUT, value: "", serialize: false, options: { serialize: false },
    computeSize: () => [node.size[0], Math.max(1, readoutLines(node).length) * LINE + 6],
    draw(ctx, _node, width, y) {
      const lines = readoutLines(node);
      node.indextts2Readout = durationReadout(node);
      node.indextts2ReadoutBox = { x: MARGIN, y, width: width - 2 * MARGIN, height: this.computedHeight ?? 0,
                                   lines: lines.map((l) => ({ text: l, width: textWidth(l, FONT) })) };
      ctx.save();
      ctx.font = FONT;
      ctx.fillStyle = "#8fd18f";
      ctx.textAlign = "left";
      lines.forEach((line, i) => ctx.fillText(line, MARGIN, y + 13 + i * LINE));
      ctx.restore();
    },
    mouse: () => false,
  };
}

function chartWidget(node) {
  return {
    name: CHART, type: CHART, value: "", serialize: false, options: { serialize: false },
    computeSize: () => [node.size[0], CHART_HEIGHT],
    draw(ctx, _node, width, y) {
      drawChart(node, ctx, width, y);
    },
    mouse: () => false,
  };
}

const HIDDEN_SIZE = () => [0, -4];  // the layout adds 4 px per widget: a hidden one takes no room

function setHidden(w, hidden) {
  if (!w || !!w.hidden === hidden) return;
  if (hidden) {
    w.indextts2OwnSize = Object.prototype.hasOwnProperty.call(w, "computeSize") ? w.computeSize : null;
    w.computeSize = HIDDEN_SIZE;
  } else if (w.computeSize === HIDDEN_SIZE) {
    if (w.indextts2OwnSize) w.computeSize = w.indextts2OwnSize;
    else delete w.computeSize;
  }
  w.hidden = hidden;
}

const linked = (node, name) => node.inputs?.some((s) => s.widget?.name === name && s.link != null);

// Show the duration inputs of the chosen mode (and the readout when there is one); with `resize`,
// the node grows or shrinks by what appeared or vanished, never below its minimum.
export function applyMode(node, resize) {
  const spec = MODE_INPUTS[node.comfyClass];
  if (!spec) return;
  const before = node.computeSize()[1];
  const mode = value(node, spec.mode, "");
  for (const [name, shownIn] of Object.entries(spec.inputs))
    setHidden(widget(node, name), mode !== shownIn && !linked(node, name));
  setHidden(widget(node, READOUT), durationReadout(node) === null);
  fitHeight(node, resize ? node.computeSize()[1] - before : 0);
}

function fitHeight(node, delta = 0) {
  const min = node.computeSize()[1];
  const height = Math.max(min, node.size[1] + delta);
  if (height !== node.size[1]) node.setSize([node.size[0], height]);
  node.setDirtyCanvas(true, true);
}

// Wide enough for the title: the front end draws it in the width less two title heights.
function fitTitle(node) {
  const font = node.titleFontStyle ?? `${LiteGraph.NODE_TEXT_SIZE}px ${LiteGraph.NODE_FONT}`;
  const need = Math.ceil(textWidth(node.getTitle?.() ?? node.title, font) + 2 * LiteGraph.NODE_TITLE_HEIGHT + 4);
  if (node.size[0] < need) node.setSize([need, node.size[1]]);
}

function chain(proto, name, fn) {
  const previous = proto[name];
  proto[name] = function (...args) {
    const r = previous?.apply(this, args);
    fn.apply(this, args);
    return r;
  };
}

function onChange(node, names, fn) {
  for (const name of names) {
    const w = widget(node, name);
    if (!w) continue;
    const cb = w.callback;
    w.callback = function (...args) {
      const r = cb?.apply(this, args);
      fn();
      return r;
    };
  }
}

app.registerExtension({
  name: "IndexTTS2.ui",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("IndexTTS2")) return;
    chain(nodeType.prototype, "onNodeCreated", function () {
      fitTitle(this);
    });
    if (nodeData.name === "IndexTTS2EmotionFromVector") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.addCustomWidget(chartWidget(this));
        this.setSize([Math.max(this.size[0], 340), this.computeSize()[1]]);
        onChange(this, [...EMOTIONS, "alpha", "normalize"], () => this.setDirtyCanvas(true, true));
      });
      nodeType.prototype.indextts2Mix = function () {
        const weights = EMOTIONS.map((n) => value(this, n));
        return emotionMix(weights, value(this, "alpha", 1), !!value(this, "normalize", false));
      };
    }
    const spec = MODE_INPUTS[nodeData.name];
    if (spec) {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.addCustomWidget(readoutWidget(this));
        onChange(this, [spec.mode], () => applyMode(this, true));
        onChange(this, Object.keys(spec.inputs), () => fitHeight(this));
        applyMode(this, false);
        this.setSize([this.size[0], this.computeSize()[1]]);
      });
      chain(nodeType.prototype, "onConfigure", function () {
        applyMode(this, false);
      });
      chain(nodeType.prototype, "onConnectionsChange", function () {
        applyMode(this, true);
      });
      chain(nodeType.prototype, "onResize", function () {
        if (this.widgets) fitHeight(this);  // the readout may need another line at a new width
      });
      chain(nodeType.prototype, "onExecuted", function (output) {
        if (output?.indextts2_timing?.[0]) {
          this.indextts2Timing = output.indextts2_timing[0];
          fitHeight(this);
        }
      });
    }
  },
});
