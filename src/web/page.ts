/**
 * "Run in this browser": loads the folder's ONNX model with onnxruntime-web (wasm, served by ranerc
 * from node_modules/onnxruntime-web/dist) and predicts with WebPredictor, without calling /predict.
 * The page script (app.js) calls `window.ranercBrowser.predict(texts)` when the switch is on.
 * Every URL is relative to the page, so an `export-web` folder works from any static host path.
 */
import { WebPredictor, type WebModelSpec } from './pipeline.js';

interface OrtTensor {
  data: unknown;
}
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
}
interface OrtModule {
  env: { wasm: { wasmPaths?: string; numThreads?: number; proxy?: boolean } };
  Tensor: new (type: string, data: BigInt64Array | Int32Array | Float32Array, dims: number[]) => unknown;
  InferenceSession: { create(model: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> };
}

export interface BrowserApi {
  /** Resolves once the model is loaded (the spec, for the page's model line). */
  load(): Promise<WebModelSpec>;
  /** /predict-shaped answers, one per text. */
  predict(texts: string[]): Promise<Array<{ entities: Array<{ text: string; type: string; start: number; end: number }> }>>;
}

const base = new URL('./', document.baseURI);
let loading: Promise<{ spec: WebModelSpec; predictor: WebPredictor }> | undefined;

async function fetchOk(url: URL): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url.pathname}: HTTP ${r.status}`);
  return r;
}

async function open(): Promise<{ spec: WebModelSpec; predictor: WebPredictor }> {
  const spec = (await (await fetchOk(new URL('web/model.json', base))).json()) as WebModelSpec;
  const ortUrl = new URL('web/ort/ort.wasm.bundle.min.mjs', base).href;
  const ort = (await import(ortUrl)) as OrtModule;
  ort.env.wasm.wasmPaths = new URL('web/ort/', base).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const bytes = new Uint8Array(await (await fetchOk(new URL(spec.onnx, base))).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const logitsName = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  const predictor = new WebPredictor(spec, async ({ ids, mask, batch, seqLen }) => {
    const dims = [batch, seqLen];
    const tensor = (name: string, a: Int32Array): unknown =>
      spec.inputTypes[name] === 'int32' ? new ort.Tensor('int32', a, dims) : new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), dims);
    const feeds: Record<string, unknown> = {};
    for (const name of session.inputNames) {
      if (name === 'input_ids') feeds[name] = tensor(name, ids);
      else if (name === 'attention_mask') feeds[name] = tensor(name, mask);
      else if (name === 'token_type_ids') feeds[name] = tensor(name, new Int32Array(batch * seqLen));
      else if (name === 'position_ids') feeds[name] = tensor(name, Int32Array.from({ length: batch * seqLen }, (_, i) => i % seqLen));
      else throw new Error(`the model has an input "${name}" the page cannot feed`);
    }
    const out = await session.run(feeds);
    return out[logitsName].data as Float32Array;
  });
  return { spec, predictor };
}

const api: BrowserApi = {
  async load() {
    loading ??= open();
    try {
      return (await loading).spec;
    } catch (e) {
      loading = undefined;
      throw e;
    }
  },
  async predict(texts) {
    await api.load();
    const { predictor } = await loading!;
    const out = [];
    for (const t of texts) out.push(await predictor.predictAnswer(t));
    return out;
  },
};

(window as unknown as { ranercBrowser: BrowserApi }).ranercBrowser = api;
document.dispatchEvent(new Event('ranerc-browser'));
