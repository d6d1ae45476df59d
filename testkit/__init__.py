"""Support for tests and benchmarks only: threaded servers, the cluster harness, the
Qdrant stand-in, random models, image helpers. Nothing in production imports it."""
