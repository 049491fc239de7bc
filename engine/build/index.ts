/** Dockerfile builds in a builder microVM (see ARCHITECTURE.md, engine/build). */
export { buildImage, BUILDER_IMAGE_ENV } from './build';
export { BUILDER_VOLUME } from './builder-vm';
export type { BuildImageOptions, BuildImageProgress, BuiltImage, BuilderStep } from './types';
