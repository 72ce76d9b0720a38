"""Local tooling: endpoints on 127.0.0.1 for tests, the demo and benchmarks. Not deployed."""
