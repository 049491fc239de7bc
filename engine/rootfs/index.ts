export { ensureRootDisk, chainKey, type RootDiskOptions, type RootDiskProgress } from './root-disk';
export { readTar, DEFAULT_TAR_LIMITS, type TarEntry, type TarLimits } from './tar-reader';
export { encodeHeader, endOfArchive, paddingFor } from './tar-writer';
export { newHeader, toBytePath, fromBytePath, type TarHeader, type TarEntryType } from './tar-types';
