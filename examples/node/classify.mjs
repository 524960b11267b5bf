#!/usr/bin/env node
// Classify PNG images with a model exported by sqnxt-edge, in Node with onnxruntime-node (.onnx or .ort):
//
//   npm ci && node classify.mjs ../../export/best/1.0-SqNxt-23.fp32.onnx digit.png [more.png ...] [--json]
//
// The facts come from the artifact's sidecar (`<model>.meta.json`): onnxruntime-node does not expose ONNX
// metadata_props. The preprocessing is the toolkit's own (preprocess.js). --json prints one JSON line per image
// with all the scores.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import * as ort from "onnxruntime-node";
import pngjs from "pngjs";
import { preprocess, top1 } from "./preprocess.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const [modelPath, ...images] = args.filter((a) => a !== "--json");
if (!modelPath || images.length === 0) {
  console.error("usage: node classify.mjs MODEL.onnx|MODEL.ort IMAGE.png... [--json]");
  process.exit(2);
}

const meta = JSON.parse(readFileSync(`${modelPath}.meta.json`, "utf8"));
const session = await ort.InferenceSession.create(modelPath, {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
});

let failed = 0;
for (const file of images) {
  let png;
  try {
    png = pngjs.PNG.sync.read(readFileSync(file)); // RGBA, 8 bits per channel
  } catch (error) {
    console.error(`${file}: not a readable PNG (${error.message})`); // one line per bad image, the rest still run
    failed += 1;
    continue;
  }
  const { data, shape } = preprocess(png.data, png.width, png.height, meta);
  const outputs = await session.run({ [meta.input_name]: new ort.Tensor("float32", data, shape) });
  const scores = outputs[meta.output_name].data;
  const index = top1(scores);
  if (json) console.log(JSON.stringify({ image: file, index, label: meta.classes[index], scores: Array.from(scores) }));
  else console.log(`${basename(file)}\t${meta.classes[index]}\t${scores[index].toFixed(3)}`);
}
process.exitCode = failed ? 1 : 0;
