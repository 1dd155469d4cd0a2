// Type entry of the package: the public API compiled from src/index.ts.
export * from './dist/src/index';
