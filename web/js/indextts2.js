// IndexTTS2 node pack: emotion-mix chart for "IndexTTS2 Emotion from Vector" and a duration
// readout on "IndexTTS2 T2S Generate" / "IndexTTS2 S2M". Plain JS, public extension API only
// (app.registerExtension, node prototype hooks, widgets); nothing here changes what is sent to
// the server.
import { app } from "../../../scripts/app.js";  // served as /extensions/<pack>/js/indextts2.js
import * as tm from "./timing.js";

const EMOTIONS = ["happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm"];
// official web UI normalisation (indextts2_core.emotion.vectors.WEBUI_BIASES / WEBUI_MAX_TOTAL)
const WEBUI_BIASES = [0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625];
const WEBUI_MAX_TOTAL = 0.8;
const COLORS = ["#f2c14e", "#e4572e", "#4e79a7", "#9c6ade", "#59a14f", "#76b7b2", "#ff9da7", "#bab0ac"];
const CHART_HEIGHT = 110, READOUT_HEIGHT = 22;

const widget = (node, name) => node.widgets?.find((w) => w.name === name);
const value = (node, name, fallback = 0) => widget(node, name)?.value ?? fallback;

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

function drawChart(node, ctx) {
  const weights = EMOTIONS.map((n) => value(node, n));
  const normalize = !!value(node, "normalize", false);
  const alpha = value(node, "alpha", 1);
  const raw = emotionMix(weights, alpha, false);
  const mixed = normalize ? emotionMix(weights, alpha, true) : null;
  const shown = mixed ?? raw;
  node.indextts2Chart = { weights: raw, normalized: mixed };
  const pad = 10, top = node.size[1] - CHART_HEIGHT + 6, h = CHART_HEIGHT - 34, w = node.size[0] - 2 * pad;
  const bar = w / EMOTIONS.length, scale = 1.2;
  ctx.save();
  ctx.fillStyle = "rgba(0,0,0,0.25)";
  ctx.fillRect(pad, top, w, h + 24);
  EMOTIONS.forEach((name, i) => {
    const x = pad + i * bar + 3;
    const hr = (Math.min(raw[i], scale) / scale) * h;
    ctx.fillStyle = COLORS[i] + (mixed ? "55" : "ff");
    ctx.fillRect(x, top + h - hr, bar - 6, hr);
    if (mixed) {
      const hn = (Math.min(mixed[i], scale) / scale) * h;
      ctx.fillStyle = COLORS[i];
      ctx.fillRect(x + (bar - 6) / 4, top + h - hn, (bar - 6) / 2, hn);
    }
    ctx.fillStyle = "#ddd";
    ctx.font = "9px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText(name.slice(0, 5), x + (bar - 6) / 2, top + h + 10);
  });
  const sum = shown.reduce((a, b) => a + b, 0);
  ctx.textAlign = "left";
  ctx.fillStyle = sum > 1 ? "#ff8080" : "#bbb";
  ctx.fillText(`mix ${sum.toFixed(2)} · speaker's own emotion ${(1 - sum).toFixed(2)}` +
               (mixed ? " · normalised (solid)" : ""), pad + 4, top + h + 21);
  ctx.restore();
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
      return `${n} tokens ≈ ${(n / t.codes_per_second).toFixed(2)} s of speech (one segment: ${frames} mel ` +
             `frames = ${tm.framesToSamples(t, frames)} samples) + silences`;
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
      return `${f} frames = ${tm.framesToSamples(t, f)} samples = ${tm.secondsOf(t, tm.framesToSamples(t, f)).toFixed(3)} s of speech + silences`;
    }
    return null;
  }
  return null;
}

function chain(proto, name, fn) {
  const previous = proto[name];
  proto[name] = function (...args) {
    const r = previous?.apply(this, args);
    fn.apply(this, args);
    return r;
  };
}

app.registerExtension({
  name: "IndexTTS2.ui",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "IndexTTS2EmotionFromVector") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.setSize([Math.max(this.size[0], 320), this.computeSize()[1] + CHART_HEIGHT]);
        for (const name of [...EMOTIONS, "alpha", "normalize"]) {
          const w = widget(this, name);
          if (!w) continue;
          const cb = w.callback;
          w.callback = (...args) => {
            const r = cb?.apply(w, args);
            this.setDirtyCanvas(true, true);
            return r;
          };
        }
      });
      chain(nodeType.prototype, "onDrawForeground", function (ctx) {
        if (!this.flags?.collapsed) drawChart(this, ctx);
      });
      nodeType.prototype.indextts2Mix = function () {
        const weights = EMOTIONS.map((n) => value(this, n));
        return emotionMix(weights, value(this, "alpha", 1), !!value(this, "normalize", false));
      };
    }
    if (nodeData.name === "IndexTTS2T2SGenerate" || nodeData.name === "IndexTTS2S2M") {
      chain(nodeType.prototype, "onExecuted", function (output) {
        if (output?.indextts2_timing?.[0]) this.indextts2Timing = output.indextts2_timing[0];
      });
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.setSize([this.size[0], this.computeSize()[1] + READOUT_HEIGHT]);
      });
      chain(nodeType.prototype, "onDrawForeground", function (ctx) {
        const text = durationReadout(this);
        this.indextts2Readout = text;
        if (!text || this.flags?.collapsed) return;
        ctx.save();
        ctx.font = "11px sans-serif";
        ctx.fillStyle = "#8fd18f";
        ctx.fillText(`⏱ ${text}`, 10, this.size[1] - 7);
        ctx.restore();
      });
    }
  },
});
