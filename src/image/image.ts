import { GradcamError } from '../errors.ts';

/** A decoded picture: RGBA, 8 bits per channel, row-major (the layout of the web's ImageData). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

export function checkImage(img: RgbaImage): void {
  if (!(Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new GradcamError(`image: ${img.width}×${img.height} needs ${img.width * img.height * 4} RGBA bytes, got ${img.data.length}`,
      'A picture is RGBA, 8 bits per channel, row-major (the layout of ImageData).');
  }
}
