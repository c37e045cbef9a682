/** A value that came from one of the served indexes, named so that the fields resolved below it ask the same index. */
export type OfIndex<T> = T & { index: string };
