// The toolkit's preprocessing, exactly (sqnxt_edge.data.resize_uint8 + preprocess), for apps in JavaScript.
// The same file is in examples/web and examples/node; tests/test_examples_js.py checks the two are identical and that
// the pixels it makes equal the toolkit's.
//
//   1. resize to input_size x input_size, bilinear with half-pixel centres (align_corners=false), antialiased
//      (a triangle filter as wide as the scale) when the image is taller than input_size;
//   2. round to uint8 (half to even) and clamp to 0..255;
//   3. x = (pixel / 255 - mean[c]) / std[c], in float32;
//   4. lay out as the sidecar's `layout`: NCHW (all R, then all G, then all B) or NHWC (interleaved).

/** Taps of a 1-D resize from `inSize` to `outSize` samples: for each output sample, its first input index and
 * normalized weights (PyTorch's antialiased bilinear; with antialias off or when enlarging it is plain bilinear). */
function taps(inSize, outSize, antialias) {
  const scale = inSize / outSize;
  const wide = antialias && scale > 1;
  const support = wide ? scale : 1;
  const out = [];
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const weights = new Float32Array(Math.max(hi - lo, 0));
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) / support));
      weights[j - lo] = w;
      total += w;
    }
    for (let k = 0; k < weights.length; k++) weights[k] = total ? weights[k] / total : 0;
    out.push({ lo, weights });
  }
  return out;
}

/** Round half to even, as torch.round and numpy.rint do (Math.round rounds halves up). */
function rint(v) {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** RGBA (canvas ImageData, pngjs) or RGB bytes of a width x height image -> RGB uint8 (HWC) at size x size. */
export function resizeRGB(pixels, width, height, size, stride = 4) {
  if (width === size && height === size) {
    const same = new Uint8Array(size * size * 3);
    for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) same[p * 3 + c] = pixels[p * stride + c];
    return same;
  }
  const antialias = size < height; // the toolkit's rule: antialias when the image is shrunk (judged by its height)
  const across = taps(width, size, antialias);
  const down = taps(height, size, antialias);
  const rows = new Float32Array(height * size * 3); // width pass first, as PyTorch's separable kernel does
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < size; x++) {
      const { lo, weights } = across[x];
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k] * pixels[(y * width + lo + k) * stride + c];
        rows[(y * size + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const { lo, weights } = down[y];
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k] * rows[((lo + k) * size + x) * 3 + c];
        out[(y * size + x) * 3 + c] = Math.min(255, Math.max(0, rint(acc)));
      }
    }
  }
  return out;
}

/** RGB uint8 (HWC, size x size) -> the model's float32 input as the sidecar describes it (mean, std, layout;
 * in_channels 1: ITU-R 601 luma, as the toolkit makes grey images). */
export function normalize(rgb, meta) {
  const size = meta.input_size;
  const n = size * size;
  const channels = meta.in_channels || 3;
  const nchw = meta.layout === "NCHW";
  const x = new Float32Array(n * channels);
  const f = Math.fround;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < channels; c++) {
      const v =
        channels === 1
          ? Math.min(255, rint(f(f(rgb[p * 3] * f(0.299)) + f(rgb[p * 3 + 1] * f(0.587)) + f(rgb[p * 3 + 2] * f(0.114)))))
          : rgb[p * 3 + c];
      x[nchw ? c * n + p : p * channels + c] = f(f(f(v / 255) - f(meta.mean[c])) / f(meta.std[c]));
    }
  }
  return x;
}

/** Decoded image (RGBA or RGB bytes, width, height) -> { data: Float32Array, shape } ready for the runtime. */
export function preprocess(pixels, width, height, meta, stride = 4) {
  const size = meta.input_size;
  const channels = meta.in_channels || 3;
  const data = normalize(resizeRGB(pixels, width, height, size, stride), meta);
  const shape = meta.layout === "NCHW" ? [1, channels, size, size] : [1, size, size, channels];
  return { data, shape };
}

/** The toolkit's top-1 rule: the index of the largest score, the lowest index on a tie (as numpy's argmax). */
export function top1(scores) {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}
