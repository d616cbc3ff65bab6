export { memoryPair, type MemoryPair, type MemoryPairOptions, type MemorySplit } from './memory-pair.js'
