/**
 * Where the large read-only arrays of an index are allocated: in ordinary memory, private to the
 * thread that reads them, or in shared memory, which every worker thread handed the arrays in its
 * workerData reads without a copy (`influence serve` reads an index once for all its workers).
 */

/** Memory of `bytes` bytes, zeroed, for typed arrays to be made over. */
export type Allocate = (bytes: number) => ArrayBuffer | SharedArrayBuffer;

export const ordinaryMemory: Allocate = (bytes) => new ArrayBuffer(bytes);

/** A SharedArrayBuffer: structured clone (workerData, postMessage) passes it by reference. */
export const sharedMemory: Allocate = (bytes) => new SharedArrayBuffer(bytes);

/** A float32 array of `length` values in memory from `allocate`. */
export const float32Array = (allocate: Allocate, length: number): Float32Array => new Float32Array(allocate(4 * length));
