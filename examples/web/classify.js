// Run an exported model in the browser: onnxruntime-web for .onnx / .ort, LiteRT.js for .tflite. Everything the
// app needs to know comes from the artifact's sidecar (`<model>.meta.json`): JavaScript cannot read ONNX
// metadata_props (neither onnxruntime-web nor -node exposes them).
import * as ort from "onnxruntime-web";
import { loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";
import { preprocess, top1 } from "./preprocess.js";

const modules = new URL("./node_modules/", import.meta.url);
ort.env.wasm.wasmPaths = new URL("onnxruntime-web/dist/", modules).href; // the .wasm files this page serves
ort.env.wasm.numThreads = 1; // more threads need a cross-origin-isolated page (COOP/COEP headers)
let liteRt = null;

/** The artifact's sidecar: classes, mean/std, input size, layout, I/O names, where the file loads. */
export async function readSidecar(url) {
  const response = await fetch(`${url}.meta.json`);
  if (!response.ok) throw new Error(`${url}.meta.json: HTTP ${response.status} (copy the sidecar beside the model)`);
  return response.json();
}

/** Open a model URL: { meta, runtime, scores(input) -> Float32Array }. */
export async function openModel(url) {
  const meta = await readSidecar(url);
  if (url.endsWith(".tflite")) {
    const why = (meta.does_not_load_in || {})["litert.js"];
    if (why) throw new Error(`${url}: ${why}`); // int8 input/output: LiteRT.js takes float32/int32/uint8 tensors only
    liteRt ??= loadLiteRt(new URL("@litertjs/core/wasm/", modules).href);
    await liteRt;
    const model = await loadAndCompile(url, { accelerator: "wasm" });
    return {
      meta,
      runtime: "litert.js",
      async scores({ data, shape }) {
        const input = new Tensor(data, shape);
        const outputs = await model.run({ [meta.input_name]: input }); // signature names: args_0 -> output_0
        input.delete();
        const out = outputs[meta.output_name];
        const values = Float32Array.from(out.toTypedArray());
        out.delete();
        return values;
      },
    };
  }
  const session = await ort.InferenceSession.create(url, { executionProviders: ["wasm"] });
  return {
    meta,
    runtime: "onnxruntime-web",
    async scores({ data, shape }) {
      const outputs = await session.run({ [meta.input_name]: new ort.Tensor("float32", data, shape) });
      return outputs[meta.output_name].data;
    },
  };
}

/** Decode an image (URL, Blob or File) to its RGBA pixels at its own size, untouched: no browser resampling
 * (a canvas resize with imageSmoothingQuality "high" changed 64% of the pixel values and 4 of 360 predictions). */
export async function decodeImage(source) {
  const blob = typeof source === "string" ? await (await fetch(source)).blob() : source;
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const { data, width, height } = context.getImageData(0, 0, bitmap.width, bitmap.height);
  bitmap.close();
  return { data, width, height };
}

/** One image through one model: { index, label, scores }. */
export async function classify(model, image) {
  const scores = await model.scores(preprocess(image.data, image.width, image.height, model.meta));
  const index = top1(scores);
  return { index, label: model.meta.classes[index], scores };
}
