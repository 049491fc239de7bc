export { ensureRootDisk, chainKey, type RootDisk, type RootDiskOptions, type RootDiskProgress } from './root-disk';
export { diskRecordPath } from './disk-record';
