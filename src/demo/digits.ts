// The digits' data for the page and the two pictures it draws: the held-out
// grid, and a digit drawn with the pointer turned into a 28x28 input the way
// MNIST's own were made (the ink's box scaled to 20x20, centred in 28x28).

export interface Digits {
  trainX: Float32Array;
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
}

/** /mnist.bin (vite.config.ts serves it): 10,000 images as bytes, then their labels; the first 8,000 train. */
export async function loadDigits(nTrain = 8000): Promise<Digits> {
  const res = await fetch(`${import.meta.env.BASE_URL}mnist.bin`);
  if (!res.ok) throw new Error(`loading the MNIST digits: HTTP ${res.status} for mnist.bin`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const n = bytes.length / 785;
  if (!Number.isInteger(n) || n <= nTrain) throw new Error(`mnist.bin has ${bytes.length} bytes: not a set of 28x28 digits with labels`);
  const x = Float32Array.from(bytes.subarray(0, n * 784), (v) => v / 255);
  const y = Int32Array.from(bytes.subarray(n * 784));
  return { trainX: x.subarray(0, nTrain * 784), trainY: y.subarray(0, nTrain), testX: x.subarray(nTrain * 784), testY: y.subarray(nTrain) };
}

/** Paint one 28x28 digit (values in [0, 1]) into a canvas, white ink on black. */
export function paintDigit(canvas: HTMLCanvasElement, pixels: Float32Array): void {
  canvas.width = canvas.height = 28;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(255 * pixels[i]!);
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

/** A canvas to draw a digit on with the mouse, a pen or a finger; `changed` runs when a stroke ends. */
export class DrawPad {
  private readonly ctx: CanvasRenderingContext2D;
  private drawing = false;
  private last: [number, number] | null = null;
  inked = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    changed: () => void,
  ) {
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    this.clear();
    const at = (e: PointerEvent): [number, number] => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
    };
    canvas.addEventListener('pointerdown', (e) => {
      this.drawing = true;
      canvas.setPointerCapture(e.pointerId);
      this.last = at(e);
      this.line(this.last, this.last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.drawing) return;
      const p = at(e);
      this.line(this.last!, p);
      this.last = p;
    });
    const end = () => {
      if (!this.drawing) return;
      this.drawing = false;
      changed();
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  private line(a: [number, number], b: [number, number]): void {
    const c = this.ctx;
    c.strokeStyle = '#fff';
    c.lineWidth = this.canvas.width / 12;
    c.lineCap = c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(...a);
    c.lineTo(...b);
    c.stroke();
    this.inked = true;
  }

  clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
  }

  /** The drawing as MNIST input (784 values in [0, 1]), or null while nothing is drawn. */
  pixels(): Float32Array | null {
    const { width: w, height: h } = this.canvas;
    const ink = this.ctx.getImageData(0, 0, w, h).data;
    let [x0, y0, x1, y1] = [w, h, -1, -1];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (ink[4 * (y * w + x)]! > 40) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    if (x1 < 0) return null;
    const small = document.createElement('canvas');
    small.width = small.height = 28;
    const s = small.getContext('2d', { willReadFrequently: true })!;
    s.fillStyle = '#000';
    s.fillRect(0, 0, 28, 28);
    const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const k = 20 / side;
    const [bw, bh] = [(x1 - x0 + 1) * k, (y1 - y0 + 1) * k];
    s.drawImage(this.canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 14 - bw / 2, 14 - bh / 2, bw, bh);
    const px = s.getImageData(0, 0, 28, 28).data;
    return Float32Array.from({ length: 784 }, (_, i) => px[4 * i]! / 255);
  }
}
