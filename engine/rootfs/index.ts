export { ensureRootDisk, chainKey, type RootDisk, type RootDiskOptions, type RootDiskProgress } from './root-disk';
export { diskRecordPath } from './disk-record';
export { readTar, DEFAULT_TAR_LIMITS, type TarEntry, type TarLimits } from './tar-reader';
export { encodeHeader, endOfArchive, paddingFor } from './tar-writer';
export { newHeader, toBytePath, fromBytePath, type TarHeader, type TarEntryType } from './tar-types';
