// The page's wiring: pick a model URL and an image file, print the top-5 classes. `window.sqnxt` exposes the same
// functions to scripts (tests/test_examples_js.py drives them in headless Chromium).
import { classify, decodeImage, openModel } from "./classify.js";
import * as preprocessing from "./preprocess.js";

window.sqnxt = { openModel, decodeImage, classify, preprocessing };

const out = document.getElementById("out");
const models = new Map();

document.getElementById("image").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  try {
    const url = document.getElementById("model").value;
    if (!models.has(url)) models.set(url, await openModel(url));
    const model = models.get(url);
    const { scores } = await classify(model, await decodeImage(file));
    const ranked = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, 5);
    out.textContent = `${model.runtime}, ${model.meta.model_name} (${model.meta.precision})\n` +
      ranked.map((i) => `${model.meta.classes[i]}\t${scores[i].toFixed(3)}`).join("\n");
  } catch (error) {
    out.textContent = `error: ${error.message}`;
  }
});
