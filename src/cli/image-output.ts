/** How the image commands print an image. */
import { SHORT_ID_LENGTH, type StoredImage } from "../image/index.js";
import { formatBytes, formatTimestamp } from "./format.js";

export function imageJson(image: StoredImage) {
  return {
    id: image.id,
    name: image.name,
    bytes: image.bytes,
    createdAt: image.createdAt,
    source: image.source,
    rootfs: image.rootfsPath,
    rootfsDigest: image.rootfsDigest,
    config: image.config,
  };
}

export function imageLine(image: StoredImage): string[] {
  return [
    image.id.slice(0, SHORT_ID_LENGTH),
    image.name,
    formatBytes(image.bytes),
    `${image.config.protocol}:${image.config.port}`,
    image.source.kind,
    formatTimestamp(image.createdAt),
  ];
}
