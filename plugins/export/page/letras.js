"use strict";
// letras: words from an exported model, in the browser. The same computation and the same
// random numbers as sampler.py (docs/export.md): one seed gives the same words on any device.
const letras = (() => {
  const doc = JSON.parse(document.getElementById("letras-model").textContent);
  const net = doc.network;

  // -- the weights: base64, little-endian float16 or float32, read into doubles ---------
  function bytesOf(base64) {
    const text = atob(base64), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new DataView(bytes.buffer);
  }
  function half(bits) {
    const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  function tensor(entry) {  // {shape, data} -> {rows, cols, v: Float64Array, row by row}
    const view = bytesOf(entry.data), size = doc.dtype === "float16" ? 2 : 4;
    const v = new Float64Array(view.byteLength / size);
    for (let i = 0; i < v.length; i++) {
      v[i] = size === 2 ? half(view.getUint16(2 * i, true)) : view.getFloat32(4 * i, true);
    }
    const cols = entry.shape[entry.shape.length - 1];
    return { rows: v.length / cols, cols, v };
  }
  function affine(w, x, b) {  // w @ x + b, each sum begun at the bias, as sampler.py does
    const out = new Float64Array(w.rows);
    for (let i = 0; i < w.rows; i++) {
      let s = b.v[i];
      for (let j = 0, k = i * w.cols; j < w.cols; j++, k++) s += w.v[k] * x[j];
      out[i] = s;
    }
    return out;
  }
  const sigmoid = (x) => 1 / (1 + Math.exp(-x));

  // -- the network: embedding or one-hot -> recurrent layers -> head --------------------
  const V = doc.alphabet.length + 1, B = doc.boundary_id;
  const embedding = net.input === "embedding" ? tensor(net.embedding) : null;
  const layers = net.layers.map((l) => ({ wih: tensor(l.weight_ih), whh: tensor(l.weight_hh),
                                          bih: tensor(l.bias_ih), bhh: tensor(l.bias_hh) }));
  const head = { w: tensor(net.head.weight), b: tensor(net.head.bias) };
  const H = net.hidden_size;

  function layerStep(l, x, state) {  // torch's gate order: lstm i f g o, gru r z n
    const a = affine(l.wih, x, l.bih), b = affine(l.whh, state[0], l.bhh);
    const h = new Float64Array(H);
    if (net.cell === "rnn") {
      for (let j = 0; j < H; j++) h[j] = net.nonlinearity === "relu" ? Math.max(a[j] + b[j], 0) : Math.tanh(a[j] + b[j]);
      return [h];
    }
    if (net.cell === "lstm") {
      const c = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const g = (k) => a[k * H + j] + b[k * H + j];
        c[j] = sigmoid(g(1)) * state[1][j] + sigmoid(g(0)) * Math.tanh(g(2));
        h[j] = sigmoid(g(3)) * Math.tanh(c[j]);
      }
      return [h, c];
    }
    for (let j = 0; j < H; j++) {  // gru: the reset gate scales the hidden part of n
      const r = sigmoid(a[j] + b[j]), z = sigmoid(a[H + j] + b[H + j]);
      const n = Math.tanh(a[2 * H + j] + r * b[2 * H + j]);
      h[j] = (1 - z) * n + z * state[0][j];
    }
    return [h];
  }
  function zeroState() {
    return layers.map(() => (net.cell === "lstm" ? [new Float64Array(H), new Float64Array(H)] : [new Float64Array(H)]));
  }
  function step(token, state) {  // -> [logits of the next token, the new state]
    let x;
    if (embedding) x = embedding.v.subarray(token * embedding.cols, (token + 1) * embedding.cols);
    else { x = new Float64Array(V); x[token] = 1; }
    const next = [];
    for (let i = 0; i < layers.length; i++) {
      next.push(layerStep(layers[i], x, state[i]));
      x = next[i][0];
    }
    return [affine(head.w, x, head.b), next];
  }

  // -- text: the tokenizer's normalisation and the alphabet ------------------------------
  const ids = new Map(doc.alphabet.map((c, i) => [c, i + 1]));
  function normalize(word) {
    word = word.normalize("NFC");
    return doc.case === "upper" ? word.toUpperCase() : doc.case === "lower" ? word.toLowerCase() : word;
  }
  function encode(word) {
    const chars = Array.from(normalize(word));
    const unknown = [...new Set(chars.filter((c) => !ids.has(c)))];
    if (unknown.length) throw new Error(`'${unknown.join("")}' ${unknown.length > 1 ? "are" : "is"} not in the model's alphabet (${doc.alphabet.join("")})`);
    return chars.map((c) => ids.get(c));
  }

  // -- known words: sorted 32-bit FNV-1a hashes of the corpus's words --------------------
  const known = (() => {
    const entry = doc.corpus && doc.corpus.known;
    if (!entry) return null;
    const view = bytesOf(entry.data), hashes = new Uint32Array(view.byteLength / 4);
    for (let i = 0; i < hashes.length; i++) hashes[i] = view.getUint32(4 * i, true);
    return hashes;
  })();
  function fnv1a(word) {
    let h = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(word)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    return h;
  }
  function isKnown(word) {
    if (!known) return null;
    const h = fnv1a(normalize(word));
    let lo = 0, hi = known.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (known[mid] < h) lo = mid + 1; else hi = mid; }
    return lo < known.length && known[lo] === h;
  }

  // -- sampling: mulberry32 and an inverse-CDF draw, as in sampler.py --------------------
  function mulberry32(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function distribution(logits, temperature, topK, forbidden) {  // unnormalised weights
    const scaled = Array.from(logits, (v) => v / temperature);
    if (forbidden !== null) scaled[forbidden] = -Infinity;
    if (topK && topK < scaled.length) {
      const kth = [...scaled].sort((p, q) => q - p)[topK - 1];
      for (let i = 0; i < scaled.length; i++) if (scaled[i] < kth) scaled[i] = -Infinity;
    }
    const top = Math.max(...scaled);
    return scaled.map((v) => (v === -Infinity ? 0 : Math.exp(v - top)));
  }
  function draw(weights, random) {  // the first token whose running sum exceeds u * total
    const cdf = [];
    let running = 0;
    for (const w of weights) cdf.push(running += w);
    const u = random() * running;
    let lo = 0, hi = cdf.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] <= u) lo = mid + 1; else hi = mid; }
    return Math.min(lo, cdf.length - 1);
  }
  function sample({ count = 20, seed = 0, temperature = 1, topK = null, prefix = "", maxLength = 50 } = {}) {
    const random = mulberry32(seed), prefixIds = encode(prefix);
    if (prefixIds.length > maxLength) throw new Error(`the prefix is longer than ${maxLength} letters`);
    let start = zeroState(), startLogits;
    for (const token of [B, ...prefixIds]) [startLogits, start] = step(token, start);
    const words = [];
    for (let w = 0; w < count; w++) {
      let logits = startLogits, state = start, letters = "";
      for (let n = 0; n < maxLength - prefixIds.length; n++) {
        const forbidden = n === 0 && prefixIds.length === 0 ? B : null;  // a word has a letter
        const token = draw(distribution(logits, temperature, topK, forbidden), random);
        if (token === B) break;
        letters += doc.alphabet[token - 1];
        [logits, state] = step(token, state);
      }
      words.push(normalize(prefix) + letters);
    }
    return words;
  }
  function probabilities(word) {  // after the boundary and after each letter: softmax of the logits
    let state = zeroState(), logits;
    return [B, ...encode(word)].map((token) => {
      [logits, state] = step(token, state);
      const top = Math.max(...logits), e = Array.from(logits, (v) => Math.exp(v - top));
      const total = e.reduce((s, v) => s + v, 0);
      return e.map((v) => v / total);
    });
  }
  return { doc, sample, probabilities, isKnown, normalize, fnv1a, mulberry32 };
})();

// -- the page: settings from the form (and the address's #hash), words into the list ----
(() => {
  const doc = letras.doc, $ = (id) => document.getElementById(id);
  const fields = ["temperature", "top_k", "prefix", "count", "seed"];
  const hash = new URLSearchParams(location.hash.slice(1));
  const initial = { ...doc.sampler, seed: doc.sampler.seed ?? Math.floor(Math.random() * 1e6) };
  for (const f of fields) {
    const value = hash.has(f) ? hash.get(f) : initial[f];
    $(f).value = value === null || value === undefined ? "" : value;
  }
  const net = doc.network, corpus = doc.corpus || {};
  $("letras-title").textContent = doc.name;
  document.title = `${doc.name} · words from a letras model`;
  const words = corpus.words === null || corpus.words === undefined ? "" : `${corpus.words.toLocaleString("en")} words, `;
  $("letras-about").textContent = `New words that sound like the ${words}made by ${net.layers.length > 1 ? net.layers.length + " layers of " : "an "}` +
    `${net.cell.toUpperCase()}${net.layers.length > 1 ? "s" : ""} of ${net.hidden_size} units, letter by letter, in your browser.`;
  $("letras-footer").innerHTML = "";
  $("letras-footer").append(`letras ${doc.letras_version} · ${doc.alphabet.length} letters · weights in ${doc.dtype}` +
    (corpus.known ? " · words of the corpus are greyed (32-bit hashes)" : "") +
    " · same seed, same words, on any device. Works offline.");

  function settings() {
    const number = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
    return { count: Math.max(1, Math.min(500, number("count") || 1)), seed: number("seed") || 0,
             temperature: number("temperature") || 1, topK: number("top_k"), prefix: $("prefix").value,
             maxLength: Number(hash.get("max_length")) || doc.sampler.max_length };
  }
  function show() {
    const s = settings(), list = $("letras-words");
    $("letras-error").textContent = "";
    list.replaceChildren();
    let drawn;
    try { drawn = letras.sample(s); } catch (error) { $("letras-error").textContent = error.message; return; }
    for (const word of drawn) {
      const item = document.createElement("li");
      item.textContent = word;
      if (letras.isKnown(word)) item.className = "known";
      list.append(item);
    }
    const state = new URLSearchParams(fields.map((f) => [f, $(f).value]));
    try { history.replaceState(null, "", "#" + state); } catch (error) { /* some file:// pages refuse */ }
  }
  $("letras-draw").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); show(); });
  $("letras-form").addEventListener("change", show);
  $("letras-form").addEventListener("submit", (event) => { event.preventDefault(); show(); });
  show();
  if (hash.has("bench")) {  // #bench=N: milliseconds to draw N words with the page's settings
    const s = { ...settings(), count: Number(hash.get("bench")) }, start = performance.now();
    letras.sample(s);
    const out = document.createElement("pre");
    out.id = "letras-bench";
    out.hidden = true;
    out.textContent = JSON.stringify({ words: s.count, ms: performance.now() - start });
    document.body.append(out);
  }
  if (hash.has("probe")) {  // #probe=word,word: the next-letter probabilities, for tests and the curious
    const out = document.createElement("pre");
    out.id = "letras-probe";
    out.hidden = true;
    out.textContent = JSON.stringify(Object.fromEntries(hash.get("probe").split(",").map((w) => [w, letras.probabilities(w)])));
    document.body.append(out);
  }
})();
