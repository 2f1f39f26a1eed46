/** Function images: recipes built with mmdebstrap, OCI/docker archives imported, all as ext4. */
export { buildImage, type BuildOptions } from "./build.js";
export { exportImage, type ExportOptions, type ExportedImage } from "./export.js";
export { importImage, type ImportOptions } from "./import.js";
export { loadRecipe, RecipeSchema, type Recipe } from "./recipe.js";
export { ImageStore, SHORT_ID_LENGTH, type ImageRecord, type StoredImage } from "./store.js";
export { entryScript, type FunctionConfig, type Protocol } from "./config.js";
export { makeExt4, writeEntryScript } from "./rootfs.js";
