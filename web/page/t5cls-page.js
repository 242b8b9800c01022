/**
 * The classifier page written by `t5cls export`: loads the export's float32 ONNX files into onnxruntime-web
 * (WebAssembly, one thread) and its tokenizer, then classifies the textarea's lines (blank ones skipped).
 * <html data-state> is loading | ready | busy | error; every class bar carries its exact probability in
 * data-probability, and <html data-load-ms> the time the model took to load.
 */
import * as ort from './ort.wasm.min.js';
import { loadTokenizer } from './tokenizer.js';
import { classProbabilities } from './rank.js';

const root = document.documentElement;
const status = document.getElementById('status');
const textsInput = document.getElementById('texts');
const button = document.getElementById('classify');
const results = document.getElementById('results');

function setState(state, message) {
  root.dataset.state = state;
  status.textContent = message;
}

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Fetches a file of the export folder (relative to index.html), reporting progress by bytes. */
async function fetchBytes(file, onProgress) {
  const response = await fetch(new URL(file, document.baseURI));
  if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || 0;
  if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
  const bytes = new Uint8Array(total);
  const reader = response.body.getReader();
  for (let done = 0; ; ) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    bytes.set(value, done);
    done += value.length;
    onProgress(done, total);
  }
  return bytes;
}

async function load() {
  const started = performance.now();
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  // Beside this module, under the names t5cls export gives them.
  ort.env.wasm.wasmPaths = {
    mjs: new URL('./ort-wasm-simd-threaded.js', import.meta.url).href,
    wasm: new URL('./ort-wasm-simd-threaded.wasm', import.meta.url).href,
  };
  const meta = await (await fetch(new URL('page/page.json', document.baseURI))).json();
  document.getElementById('about').textContent = `Classes: ${meta.classes.join(', ')}.`;
  const tokenizer = await loadTokenizer(await fetchBytes('spiece.model', () => {}), meta);
  const session = async (file, what) => {
    const bytes = await fetchBytes(file, (done, total) => setState('loading', `Loading the ${what}: ${mib(done)} of ${mib(total)}…`));
    setState('loading', `Starting the ${what}…`);
    return ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  };
  const model = { encoder: await session(meta.encoder, 'encoder'), decoder: await session(meta.decoder, 'decoder') };
  const loadMs = Math.round(performance.now() - started);
  root.dataset.loadMs = String(loadMs);
  return { meta, tokenizer, model, loadMs };
}

function resultItem(text, classes, probabilities) {
  const ranked = classes.map((name, c) => ({ name, p: probabilities[c] })).sort((a, b) => b.p - a.p);
  const item = document.createElement('li');
  item.className = 'result';
  item.dataset.label = ranked[0].name;
  const shown = document.createElement('p');
  shown.className = 'text';
  shown.textContent = text;
  const label = document.createElement('p');
  label.className = 'label';
  label.textContent = ranked[0].name;
  const bars = document.createElement('ul');
  bars.className = 'bars';
  bars.setAttribute('aria-label', 'Probability of each class');
  for (const { name, p } of ranked) {
    const bar = document.createElement('li');
    bar.className = 'bar';
    bar.dataset.class = name;
    bar.dataset.probability = String(p);
    const percent = `${(100 * p).toFixed(1)}%`;
    const nameEl = document.createElement('span');
    nameEl.className = 'name';
    nameEl.textContent = name;
    const track = document.createElement('span');
    track.className = 'track';
    track.setAttribute('role', 'img');
    track.setAttribute('aria-label', `${name}: ${percent}`);
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.width = `${(100 * p).toFixed(2)}%`;
    track.append(fill);
    const percentEl = document.createElement('span');
    percentEl.className = 'percent';
    percentEl.textContent = percent;
    bar.append(nameEl, track, percentEl);
    bars.append(bar);
  }
  item.append(shown, label, bars);
  return item;
}

async function classifyAll({ meta, tokenizer, model }) {
  const texts = textsInput.value.split(/\r?\n/).filter((line) => line.trim() !== '');
  results.replaceChildren();
  if (!texts.length) return setState('ready', 'Enter at least one text.');
  setState('busy', `Classifying ${texts.length} text${texts.length === 1 ? '' : 's'}…`);
  button.disabled = true;
  const started = performance.now();
  let cut = 0;
  try {
    for (const text of texts) {
      const full = tokenizer.encode(meta.prefix + text).length;
      if (full > meta.maxSourceLength) cut++;
      const ids = tokenizer.encodeInput(text, meta.prefix, meta.maxSourceLength);
      results.append(resultItem(text, meta.classes, await classProbabilities(ort, model, ids, meta)));
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const note = cut ? ` ${cut} cut to the model's ${meta.maxSourceLength} tokens.` : '';
    setState('ready', `Classified ${texts.length} text${texts.length === 1 ? '' : 's'} in ${seconds} s.${note}`);
  } catch (e) {
    setState('error', `Classification failed: ${e.message ?? e}`);
  } finally {
    button.disabled = false;
  }
}

load().then(
  (loaded) => {
    button.disabled = false;
    button.addEventListener('click', () => classifyAll(loaded));
    setState('ready', `Model loaded in ${(loaded.loadMs / 1000).toFixed(1)} s. Enter texts and press Classify.`);
  },
  (e) => setState('error', `Could not load the model: ${e.message ?? e}`),
);
