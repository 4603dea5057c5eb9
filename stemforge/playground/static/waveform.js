// A waveform drawn from decoded audio: per pixel column the min and max sample over all channels.

/** Per column [min, max] of `buffer`'s samples (channels overlaid), `columns` columns. */
export function peaks(buffer, columns) {
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  const frames = buffer.length;
  const result = new Float32Array(columns * 2);
  const step = frames / columns;
  for (let x = 0; x < columns; x++) {
    const from = Math.floor(x * step);
    const to = Math.max(from + 1, Math.min(frames, Math.floor((x + 1) * step)));
    let lo = 0;
    let hi = 0;
    for (const data of channels) {
      // Long columns are sampled (every few frames) so a 5-minute stem still draws at once.
      const stride = Math.max(1, Math.floor((to - from) / 512));
      for (let i = from; i < to; i += stride) {
        const s = data[i];
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
    }
    result[2 * x] = lo;
    result[2 * x + 1] = hi;
  }
  return result;
}

/** Draws `buffer` on `canvas` at the canvas's CSS size and the screen's pixel ratio. */
export function drawWaveform(canvas, buffer) {
  const ratio = globalThis.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const style = getComputedStyle(canvas);
  context.clearRect(0, 0, width, height);
  context.fillStyle = style.getPropertyValue("--wave-color").trim() || "#3b82f6";
  const columns = peaks(buffer, width);
  const middle = height / 2;
  for (let x = 0; x < width; x++) {
    const lo = columns[2 * x];
    const hi = columns[2 * x + 1];
    const top = middle - hi * middle;
    const bottom = middle - lo * middle;
    context.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
  canvas.dataset.drawn = "true";
}
