/** A workspace volume's size: a sparse file, so only what is written takes space. */
export const VOLUME_SIZE_MIB = 8192;
